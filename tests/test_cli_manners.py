"""The command line's manners: the list of commands when none is given, "did you mean" for a
misspelt command or flag, a --help that explains (description, example, exit codes), short
-q/-v, and a README synopsis that says what --help says."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# Every command the CLI has (runner/commands/, one module each, a new one included): each
# must explain itself and be in the README's synopsis.
COMMANDS = tuple(sorted(name.replace("_", "-") for name in
                        (path.stem for path in (README.parent / "runner" / "commands").glob("*.py"))
                        if name != "__init__"))
SHARED_OPTIONS = {"--help", "--color", "--verbose"}     # every command has them (README: "Every command")


def cli(*args, env=None) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**environ, **(env or {})})


def command_lines(text: str) -> dict[str, str]:
    """The commands of a listing: name -> its one line."""
    found = {}
    for line in text.split("commands:", 1)[1].splitlines():
        match = re.match(r"  (\S+)\s{2,}(\S.*)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_the_bare_cli_lists_every_command_with_one_line_each():
    bare = cli()
    assert bare.returncode == 0, bare.stderr
    listed = command_lines(bare.stdout)
    assert set(COMMANDS) == set(listed) and {"run", "validate", "show", "resume"} <= set(listed)
    assert all(listed.values())
    assert "python -m runner COMMAND --help" in bare.stdout
    # The list is the parser's own: -h names the same commands.
    assert all(name in cli("--help").stdout for name in listed)


@pytest.mark.parametrize("argv, hint", [
    (("runn", "x.json"), "did you mean 'run'?"),
    (("valdate", "x.json"), "did you mean 'validate'?"),
    (("run", "--mdoe", "dream", "x.json"), "--mdoe: did you mean --mode?"),
    (("run", "x.json", "--mode", "dreem"), "did you mean 'dream'?"),
    (("show", "--jsn", "d"), "--jsn: did you mean --json?"),
])
def test_a_misspelt_command_flag_or_choice_gets_a_suggestion(argv, hint):
    wrong = cli(*argv)
    assert wrong.returncode == 2
    assert hint in wrong.stderr, wrong.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_has_a_description_an_example_and_exit_codes(command):
    shown = cli(command, "--help")
    assert shown.returncode == 0
    text = shown.stdout
    assert re.search(r"^examples?:\n  python -m runner " + command + r"|^examples?:\n  cc ", text, re.M), text
    assert re.search(r"^exit codes:\n  0  ", text, re.M), text
    description = text.split("\n\n")[1]
    assert not description.startswith(("positional", "options")) and len(description) > 40
    # every argument is explained
    arguments = text.split("positional arguments:", 1)[-1].split("options:", 1)[0]
    for line in arguments.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):
            assert len(line.split()) > 1 or "help" in line, f"{command}: {line!r} has no help"


def test_short_quiet_and_verbose(tmp_path):
    path = tmp_path / "alt.json"
    path.write_text(json.dumps({"id": "q", "title": "q", "tasks": [{"id": "a", "description": "x",
                                                                    "parameters": {"task_type": "generic"}}]}))
    quiet = cli("run", path, "--out", tmp_path / "out", "-q")
    assert quiet.returncode == 0 and "[1/1]" not in quiet.stderr
    loud = cli("run", path, "--out", tmp_path / "out", "-q", "-v")
    assert loud.returncode == 0 and " INFO " in loud.stderr


def readme_synopsis() -> dict[str, set[str]]:
    """The options the README's synopsis gives each command."""
    block = README.read_text().split("## Command line", 1)[1].split("```", 2)[1]
    options: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        match = re.match(r"python -m runner (\S+)", line)
        if match:
            current = match.group(1)
        if current is None:
            continue
        spelt = line.split("#", 1)[0]
        options.setdefault(current, set()).update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", spelt))
    return options


def help_options(command: str) -> set[str]:
    text = cli(command, "--help").stdout
    usage = text.split("\n\n", 1)[0]
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", usage + "\n" + text.split("options:", 1)[-1])) \
        - SHARED_OPTIONS


@pytest.mark.parametrize("command", COMMANDS)
def test_the_readme_synopsis_matches_help(command):
    documented = readme_synopsis().get(command)
    assert documented is not None, f"README's synopsis has no {command}"
    assert documented - SHARED_OPTIONS == help_options(command), command


def test_the_readme_names_the_console_script_and_the_shared_options():
    text = README.read_text()
    assert "`librunner`" in text and "python -m runner resume" in text
    for option in ("--color auto|always|never", "NO_COLOR", "FORCE_COLOR", "-q", "-v"):
        assert option in text
