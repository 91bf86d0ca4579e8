"""The public map and dashboard in headless Chromium (Debian `chromium`, driven by Playwright)
against the running bot, at a phone (390×844) and a desktop (1280×800) viewport: markers match
the database and are clustered, the list beside the map follows the filters and the view and
opens the same card, the dashboard fits a phone, labels its bars, shows quick work in minutes,
totals the city and links its open/overdue numbers to those reports on the map; English
switch, no console errors; screenshots go to artifacts/."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.city import load_city
from storage.db import Database, upgrade
from storage.models import OPEN_STATUSES, STATUS_RESOLVED, Report
from tests.browser import (
    VIEWPORTS,
    ConsoleWatch,
    box,
    chromium,
    no_horizontal_overflow,
    overlapping,
    shot,
    visible_label_boxes,
)
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import seed_reports

pytestmark = pytest.mark.e2e
QUICK_MINUTES = [(12, 25), (9, 40), (15, 30), (11, 20), (14, 35)]  # first response, resolved


def add_quick_reports(db: Database, city: Any, opd: str, now: datetime) -> None:
    """Five reports of one OPD answered and fixed within minutes, two days ago."""
    kel = city.kelurahan[0]
    with db.session() as s:
        person_id = s.exec(select(Report.person_id)).first()
        for i, (first, fixed) in enumerate(QUICK_MINUTES):
            created = now - timedelta(days=2, hours=i)
            s.add(
                Report(
                    code=f"{city.city.prefix}-{created:%y%m}-9{i:04d}",
                    person_id=person_id,
                    channel="web",
                    category=city.categories[0].key,
                    description=f"Cepat {i}",
                    lat=kel.centroid[0],
                    lon=kel.centroid[1],
                    location_source="gps",
                    kode_kel=kel.code,
                    kode_kec=kel.kecamatan,
                    status=STATUS_RESOLVED,
                    opd=opd,
                    created_at=created,
                    updated_at=created + timedelta(minutes=fixed),
                    first_response_at=created + timedelta(minutes=first),
                    resolved_at=created + timedelta(minutes=fixed),
                )
            )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp / 'lapor.db'}"
    upgrade(url)
    db = Database(url)
    city = load_city("palu")
    now = datetime.now(UTC)
    seed_reports(db, city, 80, now=now, days=200)
    quick = city.opds[-1].code
    add_quick_reports(db, city, quick, now)
    with db.session() as s:
        reports = list(s.exec(select(Report)))
    db.dispose()
    env = web_only_env(url, tmp)
    port = env["HTTP_PORT"]
    with BotProcess(env, log_path=tmp / "bot.log") as proc:
        proc.wait_ready(30)
        yield {
            "base": f"http://127.0.0.1:{port}",
            "reports": reports,
            "now": now,
            "city": city,
            "quick_opd": quick,
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def drawn(page: Any) -> int:
    """Reports drawn on the map: single markers plus the counts of the clusters."""
    return int(
        page.evaluate(
            "document.querySelectorAll('path.report-marker').length + [...document"
            ".querySelectorAll('.report-cluster')].reduce((n, c) => n + +c.dataset.count, 0)"
        )
    )


def wait_count(page: Any) -> int:
    page.wait_for_selector("#count[data-state=ready]", timeout=15_000)
    return int(page.get_attribute("#count", "data-count"))


def wait_for_count(page: Any, n: int) -> None:
    page.wait_for_function(f"document.querySelector('#count').dataset.count == '{n}'")


def listed(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all("#list button[data-code]", "bs => bs.map(b => b.dataset.code)")
    )


def test_map_markers_match_the_database_and_filters_work(
    site: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/peta")
    assert page.get_attribute("html", "lang") == "id"
    reports: list[Report] = site["reports"]
    n = wait_count(page)
    assert n == len(reports) == drawn(page)

    cat = site["city"].categories[2].key
    page.select_option("#f-category", cat)
    expected = sum(r.category == cat for r in reports)
    wait_for_count(page, expected)
    assert drawn(page) == expected > 0
    page.select_option("#f-category", "")

    opd = reports[0].opd
    page.select_option("#f-opd", opd)
    expected = sum(r.opd == opd for r in reports)
    wait_for_count(page, expected)
    assert drawn(page) == expected
    page.select_option("#f-opd", "")

    kec = reports[0].kode_kec
    page.select_option("#f-kecamatan", kec)
    page.select_option("#f-days", "30")
    since = site["now"] - timedelta(days=30)
    expected = sum(r.kode_kec == kec and r.created_at.replace(tzinfo=UTC) >= since for r in reports)
    wait_for_count(page, expected)
    assert drawn(page) == expected
    page.select_option("#f-kecamatan", "")
    page.select_option("#f-days", "")
    page.select_option("#f-status", "open")
    wait_for_count(page, sum(r.status in OPEN_STATUSES for r in reports))
    page.select_option("#f-status", "")
    wait_for_count(page, len(reports))

    # close in on one report: no cluster is left, and its marker opens the public card
    r = reports[0]
    page.evaluate(f"laporMap.map.setView([{r.lat}, {r.lon}], 18, {{animate: false}})")
    marker = page.locator(f"path.report-marker.status-{r.status}").first
    marker.click(force=True)
    page.wait_for_selector("#card[data-code]", timeout=10_000)
    code = page.get_attribute("#card", "data-code")
    assert code in {r.code for r in reports}
    card = page.inner_text("#card")
    assert "Riwayat status" in card or "Status history" in card
    assert "Budi" not in card and "INTERNAL" not in card
    # a resolved report has no expected time (once shown as a literal "null") and every
    # history line is in words (once "– proof")
    done = next(x for x in reports if x.status == STATUS_RESOLVED)
    page.click("#card button.close")
    page.evaluate(f"laporMap.map.setView([{done.lat}, {done.lon}], 18, {{animate: false}})")
    page.click(f"#list button[data-code='{done.code}']")
    page.wait_for_selector(f"#card[data-code='{done.code}']", timeout=10_000)
    card = page.inner_text("#card")
    assert "null" not in card and "undefined" not in card and "Selesai" in card
    assert watch.errors == []
    page.close()


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_clusters_and_the_list_beside_the_map_follow_filters_and_view(
    site: dict[str, Any], browser: Any, vp: str
) -> None:
    page = browser.new_page(viewport=VIEWPORTS[vp])
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/peta")
    reports: list[Report] = site["reports"]
    assert wait_count(page) == len(reports)
    # the whole city: clustered, and every report listed once
    assert page.locator(".report-cluster").count() > 0
    assert page.locator(".report-cluster").count() + page.locator(
        "path.report-marker"
    ).count() < len(reports)
    assert drawn(page) == len(reports)
    assert sorted(listed(page)) == sorted(r.code for r in reports)
    assert page.get_attribute("#list-count", "data-count") == str(len(reports))
    m, lst = box(page, "#map"), box(page, ".report-list")
    if vp == "phone":
        assert lst["top"] >= m["bottom"] - 1  # below the map
    else:
        assert lst["left"] >= m["right"] - 1 and lst["top"] < m["bottom"]  # beside it
    assert no_horizontal_overflow(page)
    labels = visible_label_boxes(page, "#map")  # without tiles the kelurahan names guide
    assert len(labels) >= 3 and overlapping(labels) == []
    shot(page, f"map-{vp}.png", full_page=True)

    # a filter: the list holds exactly the reports it keeps
    cat = site["city"].categories[0].key
    page.select_option("#f-category", cat)
    keep = {r.code for r in reports if r.category == cat}
    wait_for_count(page, len(keep))
    assert set(listed(page)) == keep and len(listed(page)) == len(keep)
    assert drawn(page) == len(keep)
    assert "category=" + cat in page.url  # the filtered map can be shared

    # the view: zoom in on one kelurahan; the list is what the map shows now
    r = next(r for r in reports if r.category == cat)
    page.evaluate(f"laporMap.map.setView([{r.lat}, {r.lon}], 15, {{animate: false}})")
    b = page.evaluate(
        "(() => { const b = laporMap.map.getBounds();"
        " return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]; })()"
    )
    in_view = {
        x.code
        for x in reports
        if x.category == cat and b[0] <= round(x.lat, 3) <= b[2] and b[1] <= round(x.lon, 3) <= b[3]
    }
    page.wait_for_function(
        f"document.querySelector('#list-count').dataset.count == '{len(in_view)}'"
    )
    assert set(listed(page)) == in_view and 0 < len(in_view) < len(keep)
    # a list item opens the same card as its marker
    first = listed(page)[0]
    page.click(f"#list button[data-code='{first}']")
    page.wait_for_selector(f"#card[data-code='{first}']", timeout=10_000)
    assert watch.errors == []
    page.close()


def dash_cells(page: Any, selector: str) -> list[str]:
    return list(
        page.eval_on_selector_all(f"{selector} td", "tds => tds.map(td => td.innerText.trim())")
    )


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
    # the city total
    total = dash_cells(page, "#dash tfoot tr")
    assert total[0] == "Whole city" and total[2] == str(sum(open_by_opd.values()))
    overdue = [
        int(x)
        for x in page.eval_on_selector_all(
            "#dash tbody tr td:nth-child(4)", "tds => tds.map(t => t.innerText)"
        )
    ]
    assert total[3] == str(sum(overdue))
    assert page.locator(".chart svg rect").count() > 0
    assert "Dashboard per agency" in page.title()
    # Indonesian by default, with a switch
    page.click("#lang-switch")
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    assert page.get_attribute("html", "lang") == "id"
    assert watch.errors == []
    page.close()


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_dashboard_fits_the_screen_labels_each_bar_and_shows_minutes(
    site: dict[str, Any], browser: Any, vp: str
) -> None:
    viewport = VIEWPORTS[vp]
    page = browser.new_page(viewport=viewport)
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/dasbor")
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    assert no_horizontal_overflow(page)
    assert box(page, "#dash")["right"] <= viewport["width"]
    if vp == "phone":  # one card per OPD: every figure carries its label
        assert not page.is_visible("#dash thead")
        labels = page.eval_on_selector_all(
            "#dash tbody tr:first-child td:not(:first-child)",
            "tds => tds.map(td => getComputedStyle(td, '::before').content)",
        )
        assert labels == ['"Laporan"', '"Terbuka"', '"Lewat tenggat"', '"Median tanggapan pertama"',
                          '"Median penyelesaian"', '"Sesuai SLA"']  # fmt: skip
    # each bar has its count on it, each week its date under it
    weeks = page.evaluate(
        "fetch('/dasbor/data.json?days=90').then(r => r.json()).then(d => d.weeks)"
    )
    for chart in page.locator(".chart").all():
        counts = chart.locator("rect").evaluate_all(
            "rs => rs.map(r => +r.dataset.count).filter(Boolean)"
        )
        shown = chart.locator("text.count").all_text_contents()
        assert sorted(map(int, shown)) == sorted(counts)
        days = chart.locator("text.week").all_text_contents()
        assert days == [str(int(w[8:])) for w in weeks]
    shot(page, f"dashboard-{vp}.png", full_page=True)

    # an OPD that answers and fixes within minutes shows minutes, not "0 jam"
    quick = site["quick_opd"]
    page.select_option("#f-opd", quick)
    page.select_option("#f-days", "7")
    page.wait_for_selector(f"#dash tbody tr[data-opd='{quick}']", timeout=15_000)
    since = site["now"] - timedelta(days=7)
    rows = [
        r for r in site["reports"] if r.opd == quick and r.created_at.replace(tzinfo=UTC) >= since
    ]
    response = statistics.median(
        (r.first_response_at - r.created_at).total_seconds() / 60
        for r in rows
        if r.first_response_at
    )
    fixed = statistics.median(
        (r.resolved_at - r.created_at).total_seconds() / 60
        for r in rows
        if r.resolved_at and r.status == STATUS_RESOLVED
    )
    assert response < 60 and fixed < 60  # the quick reports set the medians
    cells = dash_cells(page, f"#dash tbody tr[data-opd='{quick}']")
    assert cells[4:6] == [f"{round(response)} menit", f"{round(fixed)} menit"], cells
    assert not any(c.startswith("0 jam") for c in dash_cells(page, "#dash"))
    assert watch.errors == []
    page.close()


def test_dashboard_open_and_overdue_numbers_open_those_reports_on_the_map(
    site: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    watch = ConsoleWatch(page)
    page.goto(site["base"] + "/dasbor")
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    row = page.locator("#dash tbody tr[data-opd]").first
    opd = row.get_attribute("data-opd")
    link = row.locator("a[data-link=overdue]")
    n = int(link.inner_text())
    assert n > 0
    link.click()
    page.wait_for_url("**/peta?*")
    assert wait_count(page) == n
    assert page.input_value("#f-status") == "overdue" and page.input_value("#f-opd") == opd
    assert len(listed(page)) == n
    reports: list[Report] = site["reports"]
    assert set(listed(page)) <= {
        r.code for r in reports if r.opd == opd and r.status in OPEN_STATUSES
    }

    page.go_back()
    page.wait_for_selector("#status[data-state=ready]", state="attached", timeout=15_000)
    page.click("#dash tfoot a[data-link=open]")
    page.wait_for_url("**/peta?*")
    assert wait_count(page) == sum(r.status in OPEN_STATUSES for r in reports)
    assert set(listed(page)) == {r.code for r in reports if r.status in OPEN_STATUSES}
    assert watch.errors == []
    page.close()
