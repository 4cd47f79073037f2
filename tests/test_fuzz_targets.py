"""Each fuzz target of fuzz/ runs for a few seconds (libFuzzer through atheris, fixed seed):
a crash, an uncaught exception or an "internal error" from any input fails the build.
`make fuzz` runs the same targets for longer."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
sys.path.insert(0, str(FUZZ))
from campaign import TARGETS  # noqa: E402
from host import InternalError, check_message  # noqa: E402


@pytest.mark.parametrize("target", TARGETS)
def test_a_short_campaign_finds_nothing(target, tmp_path):
    done = subprocess.run([sys.executable, str(FUZZ / "campaign.py"), "--seconds", "3", "--runs", "2000",
                           "--keep", str(tmp_path), target], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert f"{target}: ok" in done.stdout


def test_the_seed_corpus_comes_from_the_tests_documents(tmp_path):
    import corpus

    written = corpus.write(tmp_path)
    assert set(written) == set(TARGETS)
    for target, folder in written.items():
        assert len(list(folder.iterdir())) >= 5, target
    fixture = (FUZZ.parent / "tests" / "fixtures" / "alt_las_example_alt_file.json").read_bytes()
    import orjson
    assert orjson.dumps(orjson.loads(fixture)) in corpus.alt_documents()


@pytest.mark.parametrize("message", ["", "runner_generate_last_file: internal error: TypeError: boom"])
def test_the_rule_every_target_asserts(message):
    with pytest.raises(InternalError):
        check_message("runner_generate_last_file", message)
    check_message("runner_parse_alt_file", "runner_parse_alt_file: /tasks: required (1 error in ALT file)")
