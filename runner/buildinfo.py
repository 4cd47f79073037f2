"""Where the installed library and header are, and the compiler flags a C build needs."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def library_path() -> Path:
    return PACKAGE_DIR / "librunner.so"


def library_dir() -> Path:
    return PACKAGE_DIR


def include_dir() -> Path:
    """The header shipped in the package, or include/ of a source checkout (editable installs)."""
    installed = PACKAGE_DIR / "include"
    if (installed / "runner_ffi.h").is_file():
        return installed
    return PACKAGE_DIR.parent / "include"


def cflags() -> str:
    return f"-I{include_dir()}"


def libs() -> str:
    # The rpath lets the program find librunner.so without LD_LIBRARY_PATH; librunner.so
    # carries its own rpath to libpython.
    return f"-L{library_dir()} -Wl,-rpath,{library_dir()} -lrunner"


def pkg_config() -> str:
    """A pkg-config file for the installed library."""
    from runner import __version__

    return (
        f"libdir={library_dir()}\nincludedir={include_dir()}\n\n"
        "Name: librunner\nDescription: ALT_LAS Runner Service C ABI\n"
        f"Version: {__version__}\n"
        "Libs: -L${libdir} -Wl,-rpath,${libdir} -lrunner\nCflags: -I${includedir}\n"
    )
