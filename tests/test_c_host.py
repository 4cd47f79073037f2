"""librunner.so inside C hosts: the documented example, exports, signals, stdout, init and cleanup."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO, run_clean

C_TESTS = REPO / "tests" / "c"
HEADER = REPO / "include" / "runner_ffi.h"
DEBIAN_PYTHON = Path("/usr/bin/python3")


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("c_host")


@pytest.fixture(scope="module")
def documented_example(cc, build_dir) -> Path:
    return cc(REPO / "examples" / "c" / "documented_example.c", build_dir / "documented_example")


@pytest.fixture(scope="module")
def host(cc, build_dir) -> Path:
    return cc(C_TESTS / "host.c", build_dir / "host")


@pytest.fixture(scope="module")
def embedded_probe(cc, build_dir) -> Path:
    """A host that also includes Python.h, to look inside the embedded interpreter."""
    python_flags = [f"-I{sysconfig.get_paths()['include']}", f"-L{sysconfig.get_config_var('LIBDIR')}",
                    f"-lpython{sysconfig.get_config_var('LDVERSION')}", "-lpthread"]
    return cc(C_TESTS / "embedded_probe.c", build_dir / "embedded_probe", python_flags)


def check_documented_run(completed: subprocess.CompletedProcess, output_dir: Path) -> None:
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert re.fullmatch(r"Generated LAST file: [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", lines[0]), completed.stdout
    last_id = lines[0].removeprefix("Generated LAST file: ")
    assert lines[1].startswith("LAST file JSON: ")
    served = json.loads(lines[1].removeprefix("LAST file JSON: "))
    assert served["id"] == last_id and served["alt_file_id"] == "test_alt_file"
    assert served["success_rate"] == 0.5 and served["status"] == "partialsuccess"
    on_disk = output_dir / last_id / "last.json"
    assert on_disk.is_file()
    assert json.loads(on_disk.read_bytes()) == served


def test_documented_c_example_runs_under_env_i(documented_example, tmp_path):
    check_documented_run(run_clean([documented_example, tmp_path]), tmp_path)


def test_documented_c_example_ignores_a_hostile_python_environment(documented_example, tmp_path):
    hostile = ["PYTHONHOME=/nonexistent", f"PYTHONPATH={tmp_path / 'nothing'}", "PYTHONSTARTUP=/nonexistent",
               "PATH=/usr/bin:/bin"]
    check_documented_run(run_clean([*hostile, documented_example, tmp_path]), tmp_path)


def declared_functions(header: Path) -> set[str]:
    """Names of the functions the public header declares (comments stripped first)."""
    text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
    return set(re.findall(r"^[A-Za-z_][\w \t\*]*?\b(runner_\w+)\s*\(", text, flags=re.M))


def test_library_exports_exactly_the_header_functions_and_the_module_init(library_path):
    declared = declared_functions(HEADER)
    assert {"runner_init", "runner_get_last_error", "runner_free_string", "runner_cleanup"} <= declared
    listing = subprocess.run(["nm", "-D", "--defined-only", str(library_path)], check=True, capture_output=True,
                             text=True).stdout
    exported = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    assert exported == declared | {"PyInit_librunner"}


def test_host_signal_handlers_are_left_alone(host):
    completed = run_clean([host, "signals"])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "signals: ok\n"


def test_functions_before_init_fail_with_the_documented_error(host):
    completed = run_clean([host, "before-init"])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "before-init: ok\n"


def test_init_cleanup_init_starts_from_empty_state(host, tmp_path):
    completed = run_clean([host, "reinit", tmp_path])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "reinit: ok\n"
    assert len(list(tmp_path.glob("*-*-*-*-*/last.json"))) == 2


def test_python_stdout_survives_a_host_exit_without_cleanup(embedded_probe):
    completed = run_clean([embedded_probe, "stdout"])  # stdout is a pipe here
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "written by the embedded Python"


def test_exiting_threads_release_their_thread_states(embedded_probe):
    # Before the fix, the first thread to exit aborted the process in its key destructor.
    completed = run_clean([embedded_probe, "threads", "25"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.fullmatch(r"thread states before: (\d+), after 25 threads: \1\n", completed.stdout)


def test_bogus_log_level_fails_init_with_a_clear_message(host):
    completed = run_clean(["RUNNER_LOG_LEVEL=bogus", host, "init"])
    assert completed.returncode == 1
    assert completed.stdout == ("runner_init: RUNNER_LOG_LEVEL='bogus': expected one of trace, debug, info, "
                                "warn, error\n")


def test_missing_runner_python_fails_init_with_a_clear_message(host):
    completed = run_clean(["RUNNER_PYTHON=/nonexistent/python", host, "init"])
    assert completed.returncode == 1
    assert completed.stdout == ("runner_init: cannot start Python: /nonexistent/python (RUNNER_PYTHON) is not "
                                "an executable file; set RUNNER_PYTHON to the python of the environment "
                                "librunner is installed in\n")


ADVICE = "; set RUNNER_PYTHON to the python of the environment librunner is installed in\n"


@pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="no /usr/bin/python3")
def test_a_python_without_the_package_is_reported_as_the_wrong_environment(host):
    # Before the fix: "runner_init: internal error: ModuleNotFoundError: No module named 'runner'".
    completed = run_clean([f"RUNNER_PYTHON={DEBIAN_PYTHON}", host, "init"])
    assert completed.returncode == 1
    assert completed.stdout.startswith(f"runner_init: cannot load the core from the environment of {DEBIAN_PYTHON} "
                                       "(RUNNER_PYTHON): ModuleNotFoundError: No module named '"), completed.stdout
    assert completed.stdout.endswith(ADVICE)


def installed_like_pip(library_path: Path, prefix: Path) -> Path:
    """A virtual environment at prefix whose site-packages holds a copy of the library, as a
    wheel would install it, and whose python is this interpreter's base python. Returns the
    copy's directory (without the rest of the package: the environment cannot import it)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = prefix / "lib" / version / "site-packages" / "runner"
    package.mkdir(parents=True)
    shutil.copy2(library_path, package / "librunner.so")
    (prefix / "bin").mkdir()
    base_python = Path(sys.executable).resolve()
    (prefix / "bin" / version).symlink_to(base_python)
    (prefix / "pyvenv.cfg").write_text(f"home = {base_python.parent}\ninclude-system-site-packages = false\n")
    return package


@pytest.fixture
def installed_host(library_path, tmp_path) -> tuple[Path, Path]:
    """host.c linked against a copy of the library installed in a virtual environment."""
    package = installed_like_pip(library_path, tmp_path / "env")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    program = tmp_path / "host"
    subprocess.run([compiler, "-O2", f"-I{REPO / 'include'}", str(C_TESTS / "host.c"), str(package / "librunner.so"),
                    f"-Wl,-rpath,{package}", "-o", str(program)], check=True)
    return program, tmp_path / "env"


def test_an_installed_library_starts_the_python_of_its_own_environment(installed_host):
    # Before the fix, the build's interpreter (this checkout's .venv) was started, whatever
    # environment the library was installed into.
    program, prefix = installed_host
    python = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    completed = run_clean([program, "init"])
    assert completed.returncode == 1
    assert completed.stdout.startswith(f"runner_init: cannot load the core from the environment of {python} "
                                       "(the virtual environment librunner is installed in): ModuleNotFoundError: "
                                       "No module named '"), completed.stdout
    assert completed.stdout.endswith(ADVICE)


def test_an_installed_library_works_in_its_environment(installed_host):
    program, prefix = installed_host
    site_packages = next((prefix / "lib").glob("python*/site-packages"))
    # The rest of the package and its dependencies, from this checkout and its environment.
    (site_packages / "checkout.pth").write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    completed = run_clean([program, "init"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == "init: ok\n"


def links_libpython_statically(python: Path) -> bool:
    needed = subprocess.run(["ldd", str(python)], capture_output=True, text=True).stdout
    return "libpython" not in needed


@pytest.mark.skipif(not DEBIAN_PYTHON.exists() or not shutil.which("ldd"), reason="no /usr/bin/python3")
def test_a_python_that_links_cpython_statically_is_refused(library_path, tmp_path):
    if DEBIAN_PYTHON.resolve() == Path(sys.executable).resolve() or not links_libpython_statically(DEBIAN_PYTHON):
        pytest.skip("/usr/bin/python3 is not a statically linked foreign interpreter")
    script = tmp_path / "load.py"
    script.write_text(
        "import ctypes, sys\n"
        "lib = ctypes.CDLL(sys.argv[1])\n"
        "lib.runner_get_last_error.restype = ctypes.c_void_p\n"
        "lib.runner_free_string.argtypes = [ctypes.c_void_p]\n"
        "lib.runner_parse_alt_file.argtypes = [ctypes.c_char_p]\n"
        "def last_error():\n"
        "    error = lib.runner_get_last_error()\n"
        "    text = ctypes.string_at(error).decode()\n"
        "    lib.runner_free_string(error)\n"
        "    return text\n"
        "print(lib.runner_init()); print(last_error())\n"
        "print(lib.runner_parse_alt_file(b'{}')); print(last_error())\n"
    )
    completed = run_clean([DEBIAN_PYTHON, script, library_path])
    assert completed.returncode == 0, completed.stderr
    init, refusal, parse, not_ready = completed.stdout.splitlines()
    assert (init, parse) == ("0", "0")
    assert refusal.startswith("runner_init: the running Python links CPython statically, but librunner was "
                              "built against the shared libpython")
    assert refusal.endswith("run it with that interpreter")
    assert not_ready == "runner_parse_alt_file: librunner is not initialised: call runner_init() first"


def test_a_huge_id_is_reported_whole_and_later_errors_stay_exact(host):
    completed = run_clean([host, "huge"])
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "huge: ok\n"


def test_error_strings_and_version_need_no_gil(embedded_probe):
    # The probe holds the GIL while another thread uses these: needing it would hang.
    completed = run_clean([embedded_probe, "nogil"], timeout=30)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "without the GIL: ok\n"
