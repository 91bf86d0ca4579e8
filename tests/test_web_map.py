"""The public map and dashboard in headless Chromium (Debian `chromium`, driven by Playwright)
against the running bot: markers match the database, filters work, the card opens, the
dashboard shows the OPD figures, English switch, no console errors; screenshots go to
artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.city import load_city
from storage.db import Database, upgrade
from storage.models import OPEN_STATUSES, Report
from tests.conftest import REPO_ROOT
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import seed_reports

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_fail() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail("Debian chromium is needed: apt-get install -y chromium")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'lapor.db'}"
    upgrade(url)
    db = Database(url)
    city = load_city("palu")
    now = datetime.now(UTC)
    seed_reports(db, city, 80, now=now, days=200)
    with db.session() as s:
        reports = list(s.exec(select(Report)))
    db.dispose()
    env = web_only_env(url, tmp)
    port = env["HTTP_PORT"]
    with BotProcess(env, log_path=tmp / "bot.log") as proc:
        proc.wait_ready(30)
        yield {"base": f"http://127.0.0.1:{port}", "reports": reports, "now": now, "city": city}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    exe = chromium_or_fail()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class ConsoleWatch:
    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def markers(page: Any) -> int:
    return int(page.locator("path.report-marker").count())


def wait_count(page: Any) -> int:
    page.wait_for_selector("#count[data-state=ready]", timeout=15_000)
    return int(page.get_attribute("#count", "data-count"))


def test_map_markers_match_the_database_and_filters_work(
    site: dict[str, Any], browser: Any
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/peta")
    assert page.get_attribute("html", "lang") == "id"
    reports: list[Report] = site["reports"]
    n = wait_count(page)
    assert n == len(reports) == markers(page)

    cat = site["city"].categories[2].key
    page.select_option("#f-category", cat)
    expected = sum(r.category == cat for r in reports)
    page.wait_for_function(f"document.querySelector('#count').dataset.count == '{expected}'")
    assert markers(page) == expected > 0
    page.select_option("#f-category", "")

    opd = reports[0].opd
    page.select_option("#f-opd", opd)
    expected = sum(r.opd == opd for r in reports)
    page.wait_for_function(f"document.querySelector('#count').dataset.count == '{expected}'")
    assert markers(page) == expected
    page.select_option("#f-opd", "")

    kec = reports[0].kode_kec
    page.select_option("#f-kecamatan", kec)
    page.select_option("#f-days", "30")
    since = site["now"] - timedelta(days=30)
    expected = sum(r.kode_kec == kec and r.created_at >= since for r in reports)
    page.wait_for_function(f"document.querySelector('#count').dataset.count == '{expected}'")
    assert markers(page) == expected
    page.select_option("#f-kecamatan", "")
    page.select_option("#f-days", "")
    page.wait_for_function(f"document.querySelector('#count').dataset.count == '{len(reports)}'")

    # click a marker: the public card with its status history
    page.locator("path.report-marker").first.click(force=True)
    page.wait_for_selector("#card[data-code]", timeout=10_000)
    code = page.get_attribute("#card", "data-code")
    assert code in {r.code for r in reports}
    card = page.inner_text("#card")
    assert "Riwayat status" in card or "Status history" in card
    assert "Budi" not in card and "INTERNAL" not in card
    page.screenshot(path=str(ARTIFACTS / "map.png"), full_page=True)
    assert watch.errors == []
    page.close()


def test_dashboard_shows_open_and_overdue_per_opd(site: dict[str, Any], browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/dasbor?lang=en")
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    assert page.get_attribute("html", "lang") == "en"
    reports: list[Report] = site["reports"]
    open_by_opd: dict[str, int] = {}
    for r in reports:
        if r.status in OPEN_STATUSES:
            open_by_opd[r.opd] = open_by_opd.get(r.opd, 0) + 1
    for opd, n in open_by_opd.items():
        row = page.locator(f"tr[data-opd='{opd}'] td")
        assert row.nth(2).inner_text() == str(n)
    assert page.locator(".chart svg rect").count() > 0
    assert "Dashboard per agency" in page.title()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    # Indonesian by default, with a switch
    page.click("#lang-switch")
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    assert page.get_attribute("html", "lang") == "id"
    assert watch.errors == []
    page.close()
