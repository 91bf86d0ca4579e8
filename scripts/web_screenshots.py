"""Screenshots of the web pages at a phone (390×844) and a desktop (1280×800) viewport, and
the taps a citizen needs in the demo chat from /lapor to a ticket (map-picked place + photo).

    PYTHONPATH=. .venv/bin/python scripts/web_screenshots.py artifacts/after

Starts the real `lapor run` (web demo only) on a fresh SQLite database seeded with 80 reports
(the tests' seeding helper), drives headless Chromium with Playwright and writes
`demo-<vp>.png`, `demo-picker-<vp>.png`, `demo-ticket-<vp>.png`, `map-<vp>.png` and
`dashboard-<vp>.png` for vp in phone, desktop.  A development tool, not a test.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from bot.city import load_city
from storage.db import Database, upgrade
from tests.browser import CHROMIUM_ARGS, VIEWPORTS, chromium_or_fail
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import jpeg_bytes, seed_reports


class Taps:
    """Clicks the way a person taps, and counts them."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.n = 0

    def click(self, selector: str, **kw: Any) -> None:
        self.page.locator(selector).last.click(**kw)
        self.n += 1

    def say(self, text: str) -> None:
        self.page.fill("#text", text)
        self.click("#btn-send")

    def newest_bot(self, count_before: int) -> None:
        self.page.wait_for_function(
            f"document.querySelectorAll('#log .msg.bot').length > {count_before}", timeout=15_000
        )
        self.page.wait_for_timeout(400)  # a burst of replies lands together


def bots(page: Any) -> int:
    return int(page.locator("#log .msg.bot").count())


def demo_flow(page: Any, out: Path, vp: str, photo: Path) -> int:
    page.goto(BASE + "/demo")
    page.wait_for_selector("#log .msg.bot", timeout=15_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"demo-{vp}.png"))
    taps = Taps(page)
    n = bots(page)
    taps.say("/lapor")
    taps.newest_bot(n)
    n = bots(page)
    taps.click("#log [data-choice^='cat:']")
    taps.newest_bot(n)
    n = bots(page)
    taps.say("Jalan berlubang besar di depan sekolah dasar")
    taps.newest_bot(n)
    n = bots(page)
    taps.click("#log [data-action=location]")
    page.wait_for_selector("#picker:not([hidden]) .leaflet-container", timeout=5_000)
    page.wait_for_timeout(300)
    box = page.locator("#pick-map").bounding_box()
    taps.n += 1  # the tap on the map
    page.mouse.click(box["x"] + box["width"] / 2 + 7, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / f"demo-picker-{vp}.png"))
    taps.click("#pick-ok")
    taps.newest_bot(n)
    n = bots(page)
    if page.locator("#log [data-choice='dup:new']").count():
        taps.click("#log [data-choice='dup:new']")  # a similar report nearby: go on with mine
        taps.newest_bot(n)
        n = bots(page)
    with page.expect_file_chooser() as chooser:
        taps.click("#btn-photo")
    taps.n += 1  # choosing the file
    chooser.value.set_files(str(photo))
    taps.newest_bot(n)  # the review card follows the photo
    n = bots(page)
    taps.click("#log [data-choice='rv:send']")
    page.wait_for_function(
        "[...document.querySelectorAll('#log .msg.bot')]"
        ".some(m => /PLU-\\d{4}-\\d{4,5}/.test(m.textContent))",
        timeout=15_000,
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"demo-ticket-{vp}.png"))
    return taps.n


def main(out: Path) -> None:
    global BASE
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lapor-shots-"))
    url = f"sqlite:///{tmp / 'lapor.db'}"
    upgrade(url)
    db = Database(url)
    seed_reports(db, load_city("palu"), 80, now=datetime.now(UTC), days=200)
    db.dispose()
    photo = tmp / "photo.jpg"
    photo.write_bytes(jpeg_bytes())
    env = web_only_env(url, tmp)
    BASE = f"http://127.0.0.1:{env['HTTP_PORT']}"
    with BotProcess(env, log_path=tmp / "bot.log") as proc, sync_playwright() as p:
        proc.wait_ready(30)
        browser = p.chromium.launch(
            executable_path=chromium_or_fail(), headless=True, args=CHROMIUM_ARGS
        )
        for vp, viewport in VIEWPORTS.items():
            page = browser.new_page(viewport=viewport)
            taps = demo_flow(page, out, vp, photo)
            print(f"{vp}: {taps} taps from /lapor to a ticket with a map-picked place and a photo")
            page.goto(BASE + "/peta")
            page.wait_for_selector("#count[data-state=ready]", timeout=15_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / f"map-{vp}.png"), full_page=True)
            page.goto(BASE + "/dasbor")
            page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / f"dashboard-{vp}.png"), full_page=True)
            page.close()
        browser.close()
    for f in sorted(out.glob("*.png")):
        print(f)


BASE = ""

if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "artifacts/after"))
