"""The demo chat page in headless Chromium at a phone (390×844) and a desktop (1280×800)
viewport, against the real `lapor run` with Palu's kelurahan boundaries imported: the page fits
the screen, the newest buttons are in view, each persona keeps its thread, and the map picker
opens close in with readable labels, names the kelurahan of the pin before sending it (also
from "use my location"), and its lookup endpoint refuses hostile input with a JSON 400."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.ops import polylabel
from sqlmodel import select

from bot.city import load_city
from bot.geo import AreaIndex, parse_kelurahan_geojson
from storage.db import Database, upgrade
from storage.models import Report
from storage.repo import Repo
from tests.browser import (
    VIEWPORTS,
    ConsoleWatch,
    box,
    chromium,
    inside,
    overlapping,
    shot,
    visible_label_boxes,
)
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import jpeg_bytes

pytestmark = pytest.mark.e2e
# what the chat area shows now: the thread of the chosen persona
BOTS_JS = "[...document.querySelectorAll('#log .msg.bot')].filter(m => m.offsetParent !== null)"
OPENING_ZOOM_MIN = 14


def inner_point(geometry: str) -> tuple[float, float]:
    """(lat, lon) deep inside a kelurahan polygon (its pole of inaccessibility)."""
    geom = shapely.from_geojson(geometry)
    if geom.geom_type == "MultiPolygon":
        geom = max(geom.geoms, key=lambda g: g.area)
    p = polylabel(geom, tolerance=1e-6)
    return p.y, p.x


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{tmp / 'lapor.db'}"
    upgrade(url)
    city = load_city("palu")
    polygons = parse_kelurahan_geojson(
        (shared_data / "palu_kelurahan.geojson").read_bytes(), city
    ).loaded
    db = Database(url)
    with db.session() as s:
        repo = Repo(s)
        for code, geometry in polygons.items():
            kel = city.kelurahan_by_code(code)
            assert kel is not None
            repo.save_area_polygon(code, kel.kecamatan, kel.name, geometry)
    db.dispose()
    lere = next(k for k in city.kelurahan if k.name == "Lere")
    env = web_only_env(url, tmp)
    with BotProcess(env, log_path=tmp / "bot.log") as proc:
        proc.wait_ready(30)
        yield {
            "base": f"http://127.0.0.1:{env['HTTP_PORT']}",
            "url": url,
            "city": city,
            "areas": AreaIndex(city, polygons),
            "lere": lere,
            "lere_point": inner_point(polygons[lere.code]),
            "photo": tmp / "photo.jpg",
        }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def bot_count(page: Any) -> int:
    return int(page.evaluate(f"{BOTS_JS}.length"))


def say(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#btn-send")


def wait_reply(page: Any, before: int) -> None:
    page.wait_for_function(f"{BOTS_JS}.length > {before}", timeout=15_000)


def newest_button_in_view(page: Any) -> None:
    """The last button of the newest bot message lies wholly inside the chat log (waits for the
    page to settle: replies may land in a burst)."""
    page.wait_for_function(
        """() => {
          const msgs = [...document.querySelectorAll('#log .msg.bot')].filter(m => m.offsetParent);
          const bs = msgs.length ? msgs[msgs.length - 1].querySelectorAll('button') : [];
          if (!bs.length) return false;
          const b = bs[bs.length - 1].getBoundingClientRect();
          const log = document.getElementById('log').getBoundingClientRect();
          return b.top >= log.top - 0.5 && b.bottom <= log.bottom + 0.5 && b.height > 0;
        }""",
        timeout=5_000,
    )


def to_location_step(page: Any) -> None:
    """/lapor → a category → a description: the bot asks where, with a location button."""
    n = bot_count(page)
    say(page, "/lapor")
    wait_reply(page, n)
    newest_button_in_view(page)
    n = bot_count(page)
    page.locator("#log [data-choice='cat:jalan_rusak']:visible").last.click()
    wait_reply(page, n)
    say(page, "Jalan berlubang besar di depan sekolah")
    page.wait_for_selector("#log [data-action=location]:visible", timeout=15_000)
    newest_button_in_view(page)


def open_demo(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/demo")
    page.wait_for_selector("#log .msg.bot button:visible", timeout=15_000)


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_the_page_fits_the_screen_and_the_newest_buttons_are_in_view(
    site: dict[str, Any], browser: Any, vp: str
) -> None:
    viewport = VIEWPORTS[vp]
    page = browser.new_page(viewport=viewport)
    watch = ConsoleWatch(page)
    open_demo(page, site)
    screen = {"left": 0, "top": 0, "right": viewport["width"], "bottom": viewport["height"]}
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
    for sel in ("#text", "#btn-send", "#btn-photo", "#btn-location", "#log"):
        assert inside(box(page, sel), screen), (sel, box(page, sel))
    newest_button_in_view(page)  # the menu under the welcome
    to_location_step(page)  # after /lapor (13 category buttons) and after the description
    page.locator("#log [data-action=location]:visible").last.click()
    page.wait_for_selector("#picker:not([hidden]) .leaflet-container")
    # with the picker open the page still fits, and the question it answers stays in view
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
    for sel in ("#text", "#btn-send", "#pick-gps", "#pick-cancel"):
        assert inside(box(page, sel), screen), (sel, box(page, sel))
    newest_button_in_view(page)
    shot(page, f"demo-{vp}.png")
    assert watch.errors == []
    page.close()


def test_each_persona_keeps_its_thread_with_its_buttons(site: dict[str, Any], browser: Any) -> None:
    page = browser.new_page(viewport=VIEWPORTS["phone"])
    watch = ConsoleWatch(page)
    open_demo(page, site)
    n = bot_count(page)
    say(page, "/lapor")
    wait_reply(page, n)
    citizen = page.locator("#log button:visible").all_inner_texts()
    assert len(citizen) >= 10  # the menu and the categories
    officer = "officer-" + site["city"].opds[0].code
    page.select_option("#persona", officer)
    page.wait_for_function(f"{BOTS_JS}.length > 0", timeout=15_000)
    assert page.locator("#log [data-choice^='cat:']:visible").count() == 0  # not the citizen's
    page.select_option("#persona", "admin")
    page.wait_for_function(f"{BOTS_JS}.length > 0", timeout=15_000)
    page.select_option("#persona", "citizen")
    assert page.locator("#log button:visible").all_inner_texts() == citizen
    # and they still work
    n = bot_count(page)
    page.locator("#log [data-choice='cat:sampah']:visible").last.click()
    wait_reply(page, n)
    assert "5" in page.locator("#log .msg.bot:visible").last.inner_text()  # "at least 5 characters"
    page.select_option("#persona", officer)
    assert page.locator("#log .msg.bot:visible").count() >= 1  # the officer's thread is kept too
    assert watch.errors == []
    page.close()


def tap_map_at(page: Any, lat: float, lon: float) -> None:
    xy = page.evaluate(f"window.laporPicker.latLngToContainerPoint([{lat}, {lon}])")
    m = box(page, "#pick-map")
    assert 0 < xy["x"] < m["width"] and 0 < xy["y"] < m["height"], "the point is off the map"
    page.mouse.click(m["left"] + xy["x"], m["top"] + xy["y"])


@pytest.mark.parametrize("vp", list(VIEWPORTS))
def test_map_picker_opens_close_and_names_the_kelurahan_before_sending(
    site: dict[str, Any], browser: Any, vp: str
) -> None:
    page = browser.new_page(viewport=VIEWPORTS[vp])
    watch = ConsoleWatch(page)
    open_demo(page, site)
    to_location_step(page)
    page.locator("#log [data-action=location]:visible").last.click()
    page.wait_for_selector("#picker:not([hidden]) .leaflet-container")
    outlines = len(site["city"].kelurahan)  # drawn as the base: there are no tiles
    page.wait_for_function(
        f"document.querySelectorAll('#pick-map path.kel-outline').length == {outlines}"
    )
    assert page.evaluate("window.laporPicker.getZoom()") >= OPENING_ZOOM_MIN
    labels = visible_label_boxes(page, "#pick-map")
    assert len(labels) >= 2, labels
    assert overlapping(labels) == []
    shot(page, f"demo-picker-open-{vp}.png")

    # the tester's report: a pin in Lere must be filed in Lere, and the page says so first
    lat, lon = site["lere_point"]
    page.evaluate(f"window.laporPicker.setView([{lat}, {lon}], 16, {{animate: false}})")
    mine = page.locator("#log .msg.me:visible").count()
    tap_map_at(page, lat, lon)
    page.wait_for_selector("#pick-place[data-state=inside]", timeout=10_000)
    text = page.inner_text("#pick-place")
    assert "Kel. Lere, Palu Barat" in text and "benar?" in text, text
    assert page.get_attribute("#pick-place", "data-kel") == site["lere"].code
    assert page.is_visible("#pick-ok") and page.is_visible("#pick-move")
    assert page.locator("#log .msg.me:visible").count() == mine  # nothing sent yet
    shot(page, f"demo-picker-{vp}.png")

    # "move the pin": the confirmation goes until the new place is named
    page.click("#pick-move")
    assert not page.is_visible("#pick-ok")
    assert page.get_attribute("#pick-place", "data-state") == "moving"
    tap_map_at(page, lat, lon)
    page.wait_for_selector("#pick-place[data-state=inside]", timeout=10_000)
    n = bot_count(page)
    page.click("#pick-ok")
    assert page.is_hidden("#picker")
    sent = page.locator("#log .msg.me:visible").last.inner_text()
    assert sent == "📍 Kel. Lere, Palu Barat", sent  # a name, not raw coordinates
    wait_reply(page, n)
    newest_button_in_view(page)
    go_on = page.locator("#log [data-choice='dup:new']:visible")
    if go_on.count():  # the other viewport's report, at the same spot: offered right away
        assert "di titik yang sama" in page.inner_text("#log")
        n = bot_count(page)
        go_on.last.click()
        wait_reply(page, n)

    # finish the report: a photo (the review card follows it), send; it is filed in Lere
    site["photo"].write_bytes(jpeg_bytes())
    n = bot_count(page)
    page.set_input_files("#photo-input", str(site["photo"]))
    wait_reply(page, n)
    page.wait_for_selector("#log [data-choice='rv:send']:visible", timeout=15_000)
    page.locator("#log [data-choice='rv:send']:visible").last.click()
    page.wait_for_function(
        f"{BOTS_JS}.some(m => /PLU-\\d{{4}}-\\d{{4,5}}/.test(m.textContent))",
        timeout=15_000,
    )
    code = page.evaluate(
        f"{BOTS_JS}.map(m => m.textContent).join(' ').match(/PLU-\\d{{4}}-\\d{{4,5}}/)[0]"
    )
    db = Database(site["url"])
    try:
        with db.session() as s:
            report = s.exec(select(Report).where(Report.code == code)).one()
    finally:
        db.dispose()
    assert report.kode_kel == site["lere"].code
    # the next picker opens at the last pin
    page.locator("#btn-location").click()
    center = page.evaluate("window.laporPicker.getCenter()")
    assert abs(center["lat"] - lat) < 1e-3 and abs(center["lng"] - lon) < 1e-3
    assert watch.errors == []
    page.close()


def open_picker_fresh(page: Any, site: dict[str, Any]) -> None:
    open_demo(page, site)
    page.click("#btn-location")
    page.wait_for_selector("#picker:not([hidden]) .leaflet-container")


def test_use_my_location_names_the_place_and_a_refusal_is_explained(
    site: dict[str, Any], browser: Any
) -> None:
    lat, lon = site["lere_point"]
    ctx = browser.new_context(
        viewport=VIEWPORTS["phone"],
        geolocation={"latitude": lat, "longitude": lon},
        permissions=["geolocation"],
    )
    page = ctx.new_page()
    watch = ConsoleWatch(page)
    open_picker_fresh(page, site)
    page.click("#pick-gps")
    page.wait_for_selector("#pick-place[data-state=inside]", timeout=10_000)
    assert "Kel. Lere, Palu Barat" in page.inner_text("#pick-place")
    pin = page.evaluate("window.laporPicker.getCenter()")
    assert abs(pin["lat"] - lat) < 1e-4 and abs(pin["lng"] - lon) < 1e-4
    assert watch.errors == []
    ctx.close()

    ctx = browser.new_context(viewport=VIEWPORTS["phone"])  # no permission: refused
    page = ctx.new_page()
    open_picker_fresh(page, site)
    page.click("#pick-gps")
    page.wait_for_selector("#pick-place[data-state=gps-error]", timeout=10_000)
    assert "ditolak" in page.inner_text("#pick-place")  # "Akses lokasi ditolak. …"
    assert not page.is_visible("#pick-ok")
    ctx.close()


def get_json(url: str) -> tuple[int, str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get_content_type(), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), json.loads(err.read())


def test_place_lookup_answers_names_and_refuses_hostile_points(site: dict[str, Any]) -> None:
    base = site["base"] + "/demo/api/place?"
    lat, lon = site["lere_point"]
    status, ctype, body = get_json(base + urllib.parse.urlencode({"lat": lat, "lon": lon}))
    assert (status, ctype) == (200, "application/json")
    hit = site["areas"].locate(lat, lon)
    assert body == {
        "inside": True,
        "kode_kel": hit.kode_kel,
        "kelurahan": "Lere",
        "kecamatan": "Palu Barat",
    }
    status, _, body = get_json(base + "lat=0&lon=0")  # the Gulf of Guinea
    assert (status, body) == (200, {"inside": False})
    hostile = [
        "lat=abc&lon=119.8",
        "lat=nan&lon=119.8",
        "lat=-0.89&lon=NaN",
        "lat=inf&lon=119.8",
        "lat=1e400&lon=119.8",
        "lat=1e308&lon=119.8",
        "lat=91&lon=119.8",
        "lat=-0.89&lon=-180.5",
        "lat=-0.89",
        "lon=119.8",
        "",
        "lat=&lon=",
        "lat=0x10&lon=1",
        "lat=" + "9" * 5000 + "&lon=1",
    ]
    for q in hostile:
        status, ctype, body = get_json(base + q)
        assert (status, ctype) == (400, "application/json"), q[:40]
        assert "lat/lon" in body["error"]
    # the location message itself refuses the same points
    req = urllib.request.Request(
        site["base"] + "/demo/api/send",
        data=json.dumps(
            {
                "sid": "a" * 24,
                "persona": "citizen",
                "id": "x" * 12,
                "kind": "location",
                "lat": "nan",
                "lon": 119.8,
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    # the outlines of the imported kelurahan, for the picker without tiles
    status, _, outlines = get_json(site["base"] + "/demo/api/areas.json")
    assert status == 200
    assert {f["properties"]["name"] for f in outlines["features"]} == {
        k.name for k in site["city"].kelurahan
    }
