"""Start the real bot (`python -m bot.cli run`) as a child process for end-to-end tests.

    proc = BotProcess({"HTTP_PORT": str(free_port()), ...})
    with proc:                       # start(); terminate (or kill) on exit, always reaped
        proc.wait_ready(20)          # GET /healthz until 200 (fails early if the child died)
        ...
        proc.kill9(); proc.restart(); proc.wait_ready()

In async tests whose fakes run on the test's own event loop use `await wait_ready_async()`
and `await terminate_async()`: the blocking variants would freeze that loop while the bot is
waiting for the fake's answers.

The child runs in its own session (process group), so `kill9` and teardown also reach any
grandchildren.  Output (stdout + stderr) goes to one log file, appended across restarts.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

REPO = Path(__file__).resolve().parents[2]
BOT_COMMAND = (sys.executable, "-m", "bot.cli", "run")

_live: weakref.WeakSet[BotProcess] = weakref.WeakSet()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProcessDied(RuntimeError):
    """The child exited before it became ready."""


class BotProcess:
    """One child process with a log file, a readiness probe and hard/soft stops."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path | str = REPO,
        *,
        cmd: Sequence[str] = BOT_COMMAND,
        inherit_env: bool = True,
        log_path: Path | str | None = None,
        health_path: str = "/healthz",
    ) -> None:
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.cmd = list(cmd)
        self.inherit_env = inherit_env
        self.health_path = health_path
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="botproc-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    # ------------------------------------------------------------------ properties
    @property
    def health_url(self) -> str:
        host = self.env.get("HTTP_HOST", "127.0.0.1")
        port = self.env.get("HTTP_PORT", "8080")
        return f"http://{host}:{port}{self.health_path}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> BotProcess:
        if self.is_running():
            raise RuntimeError("already running")
        env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._close_log()
        self._log = open(self.log_path, "ab")
        self._log.write(f"--- start #{self.starts + 1}: {' '.join(self.cmd)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        _live.add(self)
        return self

    def _probe(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _check_alive(self) -> None:
        if self.proc is None:
            raise RuntimeError("not started")
        code = self.proc.poll()
        if code is not None:
            raise ProcessDied(f"exited with {code} before ready; log:\n{self.logs()[-4000:]}")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll the health URL until 200; raise early if the child exits."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if self._probe():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.health_url} not ready in {timeout} s; log:\n{self.logs()[-4000:]}"
                )
            time.sleep(0.05)

    async def wait_ready_async(self, timeout: float = 20.0) -> None:
        """Like `wait_ready`, without blocking the running event loop."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if await asyncio.to_thread(self._probe):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.health_url} not ready in {timeout} s; log:\n{self.logs()[-4000:]}"
                )
            await asyncio.sleep(0.05)

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout` s (then SIGKILL); returns the exit code."""
        if self.proc is None:
            raise RuntimeError("not started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # leftovers in the group, if any
        self._close_log()
        return int(self.proc.returncode)

    async def terminate_async(self, timeout: float = 10.0) -> int:
        """`terminate` without blocking the event loop (the bot may still call our fakes)."""
        return await asyncio.to_thread(self.terminate, timeout)

    def kill9(self) -> int:
        """SIGKILL the whole process group (a crash); returns the exit code (-9)."""
        if self.proc is None:
            raise RuntimeError("not started")
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self._close_log()
        return int(self.proc.returncode)

    def restart(self, timeout: float = 10.0) -> BotProcess:
        """Terminate (if running) and start again with the same settings."""
        if self.is_running():
            self.terminate(timeout)
        return self.start()

    def logs(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def cleanup(self) -> None:
        """Make sure nothing is left running (safe to call many times)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.terminate(timeout=5)
            else:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> BotProcess:
        return self if self.is_running() else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        try:
            proc.cleanup()
        except Exception:
            pass
