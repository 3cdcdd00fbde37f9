"""
The processes the rehearsal starts, and nothing else: each one is started in
a session of its own, remembered by pid, and stopped by that pid (its process
group) when the run ends, fails or is interrupted.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests


class Stopped(Exception):
    """A process the rehearsal needs has exited."""


class Process:
    def __init__(self, name: str, argv: list[str], *, env: dict, cwd: Path, log_dir: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise Stopped(f"{self.name} (pid {self.pid}) exited with {code}; see {self.log_path}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to this process's own group (its session), then SIGKILL if it lingers."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # The leader is gone; its children (gunicorn or celery workers) may not be.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self._log.close()

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every process of one run, stopped in reverse order of start."""

    def __init__(self, *, cwd: Path, log_dir: Path):
        self.cwd = cwd
        self.log_dir = log_dir
        self.started: list[Process] = []

    def start(self, name: str, argv: list[str], *, env: dict) -> Process:
        process = Process(name, argv, env=env, cwd=self.cwd, log_dir=self.log_dir)
        self.started.append(process)
        return process

    def check_alive(self) -> None:
        for process in self.started:
            process.check_alive()

    def stop_all(self) -> None:
        while self.started:
            process = self.started.pop()
            try:
                process.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"  could not stop {process.name} (pid {process.pid}): {exc}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.25, alive=None):
    """Poll `predicate` until it returns something truthy; `alive()` raises if a needed process died."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def http_ok(url: str, **kwargs) -> bool:
    return requests.get(url, timeout=5, **kwargs).status_code == 200
