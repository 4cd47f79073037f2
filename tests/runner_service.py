"""A real `python -m runner serve` on 127.0.0.1 for the service tests: started as a subprocess
on a free port (--port 0: it prints the URL it listens on), driven with requests."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

LISTENING = re.compile(r"listening on (http://\S+)")


class RunnerService:
    def __init__(self, out: Path, alt_dir: Path | None = None, environ: dict | None = None, token: str | None = None,
                 extra_args=()):
        self.out = Path(out)
        self.alt_dir = alt_dir
        self.token = token
        self.environ = {name: value for name, value in os.environ.items() if not name.startswith("RUNNER_")}
        if token is not None:
            self.environ["RUNNER_API_TOKEN"] = token
        self.environ.update(environ or {})
        self.extra_args = list(extra_args)
        self.process = None
        self.url = None
        self.log_path = self.out.parent / f"{self.out.name}-serve.log"
        self.http = requests.Session()
        if token is not None:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def start(self, timeout: float = 60.0) -> "RunnerService":
        command = [sys.executable, "-m", "runner", "serve", "--port", "0", "--out", str(self.out)]
        if self.alt_dir is not None:
            command += ["--alt-dir", str(self.alt_dir)]
        self._log = open(self.log_path, "ab")
        start = self._log.tell()
        self.process = subprocess.Popen(command + self.extra_args, env=self.environ, stdout=self._log,
                                        stderr=self._log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[start:].decode(errors="replace")
            found = LISTENING.search(text)
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}: {text}")
            time.sleep(0.05)
        raise RuntimeError(f"serve did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **options):
        return self.http.get(self.url + path, timeout=30, **options)

    def post(self, path: str, **options):
        return self.http.post(self.url + path, timeout=30, **options)

    def wait_for(self, run_id: str, statuses=("success", "partialsuccess", "failure", "cancelled"),
                 timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.get(f"/api/v1/runs/{run_id}")
            assert answer.status_code == 200, answer.text
            view = answer.json()
            if view["status"] in statuses:
                return view
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not reach {statuses}: {view}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self._log.close()

    def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self.process is not None:
            self._log.close()
