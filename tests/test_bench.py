"""The benchmarks still run: each in a small size, as a subprocess, finishing in seconds.

Their figures are machine-dependent and are not asserted here beyond what must hold on any
machine (everything sent once, nothing missed); `make bench` gives the real numbers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from tests.conftest import REPO_ROOT


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a bench in its own process group: a hang is killed with the fakes it started."""
    cmd = [sys.executable, *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args[0]} did not finish in {timeout} s:\n{out[-2000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_broadcast_bench_runs_both_parts() -> None:
    res = bench("bench/broadcast.py", "--n", "50", "--no-baseline", "--trials", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    row = next(line for line in res.stdout.splitlines() if line.strip().startswith("ours"))
    cells = [c.strip() for c in row.split("|")]
    sent, duplicates, misses = int(cells[1]), int(cells[7]), int(cells[8])
    assert (sent, duplicates, misses) == (50, 0, 0), row
    latency = re.search(r"first warning sent: median (\d+\.\d+) s", res.stdout)
    assert latency is not None, res.stdout[-2000:]
