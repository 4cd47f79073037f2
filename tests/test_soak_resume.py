"""A short fixed slice of the kill/resume soak (benchmarks/soak_resume.py, `make soak` for
minutes): flat and control-flow documents of commands and file appends, kill -9 and SIGTERM
during runs and resumes, resumed until done; every effect happened once, but for at most the
effects a killed cycle did or had under way without their record (the documented window).
The seed fixes the documents and the kill points (events: N more lines in the log, the
journal's appearance, a random delay); what a kill interrupts varies with the machine's
load, and every outcome is checked the same way (no timing is asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak_resume.py"


def test_a_short_soak_repeats_no_recorded_effect(tmp_path):
    done = subprocess.run([sys.executable, str(SOAK), "--scenarios", "5", "--seed", "11", "--kills", "3",
                           "--keep", str(tmp_path / "soak")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "ok: every effect happened once" in done.stdout
    assert " 0 kills" not in done.stdout, done.stdout
