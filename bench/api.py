"""Open311 GET throughput on 10k reports against the real server (`lapor run`, one process).

Seeds a temporary SQLite database with 10,000 reports (with events), starts the bot, and for a
few seconds per endpoint runs a closed loop of concurrent aiohttp clients on 127.0.0.1:
a baseline (`/healthz`, which also touches the database, and a static file), then Open311
listings and single requests.  Prints requests/s, p50 and p99 latency, and each figure's
ratio to the static-file baseline measured in the same run.

    .venv/bin/python bench/api.py [--reports 10000] [--seconds 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.city import load_city
from storage.db import Database, upgrade
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import seed_reports


async def measure(
    base: str, paths: list[str], seconds: float, concurrency: int
) -> tuple[float, float, float, int]:
    """Closed loop: `concurrency` workers, each request after the previous one returns."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    rng = random.Random(1)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=conn) as http:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                path = paths[rng.randrange(len(paths))]
                t0 = time.perf_counter()
                async with http.get(path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    latencies.sort()
    rps = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return rps, p50, p99, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'lapor.db'}"
        upgrade(url)
        db = Database(url)
        t0 = time.perf_counter()
        codes = seed_reports(db, load_city("palu"), args.reports, now=datetime.now(UTC), days=365)
        db.dispose()
        print(f"seeded {len(codes)} reports in {time.perf_counter() - t0:.1f} s")
        env = web_only_env(url, tmp)
        port = env["HTTP_PORT"]
        rng = random.Random(2)
        sample = rng.sample(codes, 200)
        cases = [
            ("baseline: static file", ["/static/app.css"]),
            ("baseline: /healthz (1 query)", ["/healthz"]),
            ("open311 services.json", ["/open311/v2/services.json"]),
            ("open311 requests.json (page of 50)", ["/open311/v2/requests.json?page_size=50"]),
            (
                "open311 requests.json filtered",
                ["/open311/v2/requests.json?status=open&service_code=sampah&page_size=50"],
            ),
            ("open311 requests.xml (page of 50)", ["/open311/v2/requests.xml?page_size=50"]),
            ("open311 requests/{id}.json", [f"/open311/v2/requests/{c}.json" for c in sample]),
        ]
        with BotProcess(env, log_path=tmp / "bot.log") as proc:
            proc.wait_ready(60)
            base = f"http://127.0.0.1:{port}"
            print(
                f"server: one `lapor run` process, SQLite, {args.concurrency} concurrent "
                f"clients, {args.seconds:.0f} s per case"
            )
            print(f"{'case':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs static':>10}")
            baseline = None
            for name, paths in cases:
                asyncio.run(measure(base, paths, 0.5, args.concurrency))  # warm up
                rps, p50, p99, errors = asyncio.run(
                    measure(base, paths, args.seconds, args.concurrency)
                )
                baseline = baseline or rps
                note = f"  ({errors} errors)" if errors else ""
                print(f"{name:40} {rps:8.0f} {p50:8.1f} {p99:8.1f} {rps / baseline:9.2f}x{note}")


if __name__ == "__main__":
    main()
