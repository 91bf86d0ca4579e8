"""Baseline figure: how many updates/s a bare aiogram 3 echo bot handles against FakeBotAPI.

    python bench/echo_bot.py [--users 50] [--msgs 10]        # prints the figure (JSON)
    python bench/echo_bot.py --api-base URL --token T         # just the echo bot, until killed

The benchmark starts a FakeBotAPI (no rate limits) in this process, the echo bot as a
subprocess, pushes all `users × msgs` updates at once and times until every update has its
reply.  Three timed runs against the same bot process; the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


async def run_echo_bot(api_base: str, token: str) -> None:
    """The bot under test: one router, one handler echoing text back."""
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
    await dp.start_polling(bot, handle_as_tasks=True, handle_signals=True)


def run_echo_baseline(n_users: int = 50, n_msgs_each: int = 10, runs: int = 3) -> dict[str, Any]:
    """Median updates/s of the echo bot over `runs` timed runs."""
    from tests.fakes.procs import BotProcess
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    api = FakeBotAPI().start_in_thread()
    bot = BotProcess(
        {},
        cmd=[
            sys.executable,
            str(Path(__file__).resolve()),
            "--api-base",
            api.base_url,
            "--token",
            DEFAULT_TOKEN,
        ],
    )
    durations: list[float] = []
    try:
        bot.start()
        api.wait_for_sync(lambda: api.in_flight("getUpdates") > 0, timeout=60)
        total = n_users * n_msgs_each
        for run in range(runs):
            api.reset_calls()
            updates = [
                api.text_update(1000 + u, f"r{run} u{u} m{m}")
                for m in range(n_msgs_each)
                for u in range(n_users)
            ]
            started = time.perf_counter()
            api.push_updates(updates)
            api.wait_for_sync(lambda: api.stats.sent_total >= total, timeout=120)
            durations.append(time.perf_counter() - started)
            for u in range(n_users):
                texts = sorted(m["text"] for m in api.sent_to(1000 + u))
                expected = sorted(f"r{run} u{u} m{m}" for m in range(n_msgs_each))
                if texts != expected:
                    raise AssertionError(f"user {u}: replies {texts[:3]}… ≠ {expected[:3]}…")
    finally:
        bot.cleanup()
        api.stop()
    median = statistics.median(durations)
    return {
        "updates": total,
        "users": n_users,
        "msgs_each": n_msgs_each,
        "runs_s": [round(d, 4) for d in durations],
        "median_s": round(median, 4),
        "updates_per_s": round(total / median, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", help="run only the echo bot against this Bot API")
    parser.add_argument("--token", default="123456:TEST-token")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--msgs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.api_base:
        asyncio.run(run_echo_bot(args.api_base, args.token))
        return
    print(json.dumps(run_echo_baseline(args.users, args.msgs)))


if __name__ == "__main__":
    main()
