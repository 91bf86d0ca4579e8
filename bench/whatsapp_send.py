"""WhatsApp send throughput: the outbox sender against a fake Graph API limited to 80 msg/s.

    .venv/bin/python bench/whatsapp_send.py [--n 2000] [--runs 3] [--rate 80] [--json]

One message to each of N recipients.  The fake Graph API (tests/fakes/graph_api.py, real HTTP on
127.0.0.1, in a thread) answers 130429 beyond `--rate` messages in any sliding second for the
phone number, and 131056 (pair limit) for a second message to one recipient within 6 s.

- **sender**: the real `bot.sender.Sender` with the real `WhatsAppTransport` (pywa underneath)
  draining a SQLite outbox, in this process.  Median of `--runs` runs, each on a fresh fake and
  a fresh database.
- **baseline**: a naive sequential loop, `await wa.send_message(to, text)` with pywa, sleeping
  1 s (the Retry-After) and trying again on a rate-limit error; one run.

msg/s = messages accepted by the fake / seconds from the start until the last one was accepted
(start-up included).  Ratio = msg/s ÷ the limit; the goal is ≥ 0.9 with no pair-limit errors,
no duplicates and no misses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from aiohttp import web  # noqa: E402

from tests.fakes.graph_api import PHONE_ID, FakeGraphAPI  # noqa: E402

PAIR_WINDOW_S = 6.0  # Meta: about one message per 6 s to the same person
RUN_TIMEOUT_S = 600.0


class PairLimitedGraph(FakeGraphAPI):
    """The fake Graph API plus a pair limit: a 2nd message to someone within 6 s → 131056."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._seen = 0  # how much of `self.sent` is indexed in `_last_ok`
        self._last_ok: dict[str, float] = {}

    def _programmed_error(self, address: str) -> int | None:
        code = super()._programmed_error(address)
        if code is not None:
            return code
        with self._lock:
            for m in self.sent[self._seen :]:
                self._last_ok[m.address] = m.at
            self._seen = len(self.sent)
        last = self._last_ok.get(address)
        if last is not None and time.monotonic() - last < PAIR_WINDOW_S:
            return 131056
        return None

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.router.add_get("/_bench/sent", self._bench_sent)
        return app

    async def _bench_sent(self, _request: web.Request) -> web.Response:
        """What was accepted (address, monotonic time) and the error counters."""
        sent = [(m.address, m.at) for m in self.sent]
        return web.json_response({"sent": sent, "counters": dict(self.counters)})


async def serve_fake(rate: float, port_file: Path) -> None:
    """Child process: run the fake Graph API until killed; write its port to `port_file`."""
    graph = await PairLimitedGraph(throughput=rate).start()
    await asyncio.to_thread(port_file.write_text, str(graph.port))
    await asyncio.Event().wait()


class FakeProcess:
    """The fake Graph API in its own process, so its CPU does not count against the sender."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.token = FakeGraphAPI().token
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> FakeProcess:
        with tempfile.TemporaryDirectory(prefix="wa-fake-") as tmp:
            port_file = Path(tmp) / "port"
            cmd = [
                sys.executable,
                __file__,
                "--serve-fake",
                str(port_file),
                "--rate",
                str(self.rate),
            ]
            self.proc = subprocess.Popen(cmd, cwd=REPO)
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake Graph API did not start")
                time.sleep(0.05)
            self.base_url = f"http://127.0.0.1:{port_file.read_text()}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    async def report(self) -> tuple[list[tuple[str, float]], Counter[str]]:
        async with httpx.AsyncClient() as client:
            data = (await client.get(f"{self.base_url}/_bench/sent", timeout=30)).json()
        return [(a, float(t)) for a, t in data["sent"]], Counter(data["counters"])


@dataclass
class RunResult:
    accepted: int
    seconds: float
    msg_per_s: float
    ratio: float
    throughput_errors: int  # 130429
    pair_limit_errors: int  # 131056
    other_errors: int
    duplicates: int  # recipients who got more than one message
    misses: int  # recipients who got none


def recipients(n: int) -> list[str]:
    return [f"62812{i:08d}" for i in range(n)]


def tally(
    sent: list[tuple[str, float]], errors: Counter[str], to: list[str], started: float, rate: float
) -> RunResult:
    per = Counter(address for address, _at in sent)
    accepted = len(sent)
    seconds = (max(at for _a, at in sent) - started) if sent else float("inf")
    msg_per_s = accepted / seconds if seconds > 0 else 0.0
    known = errors["error_130429"] + errors["error_131056"]
    return RunResult(
        accepted=accepted,
        seconds=round(seconds, 3),
        msg_per_s=round(msg_per_s, 2),
        ratio=round(msg_per_s / rate, 3) if rate else 0.0,
        throughput_errors=errors["error_130429"],
        pair_limit_errors=errors["error_131056"],
        other_errors=errors["errors"] - known,
        duplicates=sum(1 for a in to if per[a] > 1),
        misses=sum(1 for a in to if per[a] == 0),
    )


def _settings(graph: FakeProcess, rate: float, tmp: Path, db_url: str) -> Any:
    from bot.config import load_settings

    return load_settings(
        _env_file=None,
        database_url=db_url,
        media_dir=tmp / "media",
        whatsapp_token=graph.token,
        whatsapp_phone_id=PHONE_ID,
        whatsapp_app_secret="bench-secret",
        whatsapp_verify_token="bench-verify",
        whatsapp_api_base=graph.base_url,
        whatsapp_rate=rate,
    )


async def run_sender(graph: FakeProcess, n: int, rate: float, tmp: Path) -> RunResult:
    """One run of the real outbox sender + WhatsApp transport."""
    from bot.channels.whatsapp import WhatsAppTransport, make_graph_client, make_pywa
    from bot.i18n import I18n
    from bot.sender import Sender
    from handlers.events import PRIORITY_WARNING, Reply
    from storage.db import Database, upgrade
    from storage.repo import Repo

    db_url = f"sqlite:///{tmp / 'outbox.db'}"
    upgrade(db_url)
    db = Database(db_url)
    to = recipients(n)
    with db.session() as s:
        repo = Repo(s)
        for i, address in enumerate(to):
            reply = Reply(text=f"Peringatan dini (uji beban) #{i}: waspada banjir di Kel. Lere.")
            repo.enqueue(
                channel="whatsapp",
                address=address,
                payload=reply.to_payload(),
                kind="warning",
                priority=PRIORITY_WARNING,
                meta={"lang": "id"},
            )
    http = make_graph_client(graph.base_url)
    try:
        settings = _settings(graph, rate, tmp, db_url)
        wa = make_pywa(settings, http)
        # identity_id is None on these rows: no 24 h lookup, free-form text as inside the window
        transport = WhatsAppTransport(wa.api, settings, I18n())
        sender = Sender(db, {"whatsapp": transport}, concurrency=settings.sender_concurrency)
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(sender.run(stop))
        deadline = started + RUN_TIMEOUT_S
        while sender.stats.sent + sender.stats.failed < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        return tally(*await graph.report(), to, started, rate)
    finally:
        await http.aclose()
        db.dispose()


async def run_baseline(graph: FakeProcess, n: int, rate: float) -> RunResult:
    """A naive sequential pywa loop: send, and on a rate-limit error sleep 1 s and retry."""
    from pywa.errors import WhatsAppError
    from pywa_async import WhatsApp

    from bot.channels.whatsapp import make_graph_client

    http = make_graph_client(graph.base_url)
    to = recipients(n)
    try:
        wa = WhatsApp(phone_id=PHONE_ID, token=graph.token, session=http)
        started = time.monotonic()
        for i, address in enumerate(to):
            for _attempt in range(10):
                try:
                    await wa.send_message(to=address, text=f"Peringatan dini (uji beban) #{i}")
                    break
                except WhatsAppError as err:
                    if err.code not in (130429, 131056, 80007):
                        break  # counted as a miss
                    await asyncio.sleep(1.0)
        return tally(*await graph.report(), to, started, rate)
    finally:
        await http.aclose()


def median_run(results: list[RunResult]) -> RunResult:
    """The run with the median msg/s (the lower of the middle two for an even count)."""
    return sorted(results, key=lambda r: r.msg_per_s)[(len(results) - 1) // 2]


def line(name: str, r: RunResult) -> str:
    return (
        f"{name:<16} {r.msg_per_s:7.1f} msg/s  ratio {r.ratio:.3f}  "
        f"130429: {r.throughput_errors}  131056: {r.pair_limit_errors}  "
        f"other errors: {r.other_errors}  duplicates: {r.duplicates}  misses: {r.misses}  "
        f"({r.accepted} in {r.seconds:.1f} s)"
    )


async def bench(n: int, runs: int, rate: float, baseline: bool) -> dict[str, Any]:
    sender_runs: list[RunResult] = []
    for _ in range(runs):  # a fresh fake (counters, limits) and database for each run
        with FakeProcess(rate) as graph, tempfile.TemporaryDirectory(prefix="wa-bench-") as tmp:
            sender_runs.append(await run_sender(graph, n, rate, Path(tmp)))
    result: dict[str, Any] = {
        "n": n,
        "limit_msg_per_s": rate,
        "sender_runs": [asdict(r) for r in sender_runs],
        "sender_median": asdict(median_run(sender_runs)),
    }
    if baseline:
        with FakeProcess(rate) as graph:
            result["baseline"] = asdict(await run_baseline(graph, n, rate))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="recipients (one message each)")
    parser.add_argument("--runs", type=int, default=3, help="sender runs (median reported)")
    parser.add_argument("--rate", type=float, default=80.0, help="msg/s per phone number")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive pywa loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve-fake", type=Path, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.serve_fake:
        asyncio.run(serve_fake(args.rate, args.serve_fake))
        return 0
    result = asyncio.run(bench(args.n, args.runs, args.rate, not args.no_baseline))
    if args.json:
        print(json.dumps(result))
        return 0
    med = RunResult(**result["sender_median"])
    print(f"WhatsApp send: {args.n} recipients, fake Graph API limit {args.rate:g} msg/s")
    for i, r in enumerate(result["sender_runs"], 1):
        print(line(f"sender run {i}", RunResult(**r)))
    print(line(f"sender median/{args.runs}", med))
    if "baseline" in result:
        print(line("naive pywa loop", RunResult(**result["baseline"])))
    ok = med.ratio >= 0.9 and med.pair_limit_errors == 0 and not (med.duplicates or med.misses)
    print(f"goal (ratio ≥ 0.9, no pair-limit errors, no duplicates or misses): "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
