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


def test_broadcast_bench_runs_small() -> None:
    """The disaster-scale bench end to end, small: a real `lapor run` on SQLite, the Benanga
    sensor over Siaga, 60 subscribers warned in the paid lane, and the 30 msg/s reference;
    every one warned once, the first warning printed with its latency."""
    res = bench(
        "bench/broadcast.py", "--n", "60", "--rate", "1000", "--procs", "1", "--trials", "1",
        "--db", "sqlite", "--free-n", "20", "--baseline-n", "0", timeout=240,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    trial = re.search(r"1 process, trial 1: ratio [\d.]+, .* (\d+) duplicates, (\d+) misses, "
                      r"first (\d+\.\d+) s", res.stdout)  # fmt: skip
    assert trial is not None, res.stdout[-2000:]
    assert (int(trial.group(1)), int(trial.group(2))) == (0, 0), trial.group(0)
    assert float(trial.group(3)) < 30
    assert re.search(r"free 30 msg/s: ratio [\d.]+", res.stdout), res.stdout[-2000:]
