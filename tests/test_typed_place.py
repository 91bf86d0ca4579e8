"""Typed places through the conversation: fuzzy names first, then a (fake) Nominatim server;
with the geocoder down, names still work and the citizen is told what to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from bot.geocode import Geocoder
from storage.models import Report
from tests.core_harness import CoreHarness, texts
from tests.fakes.nominatim import FakeNominatim, place

TOWUA = (-0.9150, 119.8800)  # a point in Kota Palu


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    fake = FakeNominatim(
        places={"jalan towua nomor 12, kota palu": place(*TOWUA, "Jalan Towua, Tatura, Palu")},
        addresses={(-0.889, 119.866): "Jalan Sam Ratulangi, Besusu Barat, Palu"},
    )
    with fake:
        yield fake


def core_with(url: str, fake: FakeNominatim) -> CoreHarness:
    core = CoreHarness(url)
    core.svc.geocoder = Geocoder(fake.url, "lapor-warga-tests/1", timeout=2)
    return core


def start_report(core: CoreHarness, user: str) -> None:
    core.text(user, "/lapor")
    core.choose(user, "cat:jalan_rusak")
    core.text(user, "Jalan berlubang besar, bahaya untuk motor")


def test_an_address_is_geocoded_and_confirmed(sqlite_url: str, nominatim: FakeNominatim) -> None:
    core = core_with(sqlite_url, nominatim)
    start_report(core, "u")
    outs = core.text("u", "Jalan Towua nomor 12")
    assert "Jalan Towua" in texts(outs) and core.step("u") == "report.place_confirm"
    assert nominatim.count("/search") == 1
    core.choose("u", "loc:yes")
    core.choose("u", "ph:done")
    core.choose("u", "rv:send")
    with core.db.session() as s:
        [rep] = list(s.exec(select(Report)))
    assert (rep.lat, rep.lon) == TOWUA and rep.location_source == "typed"
    assert rep.kode_kel is not None and rep.kode_kel.startswith("72.71.")


def test_gps_points_get_a_readable_address(sqlite_url: str, nominatim: FakeNominatim) -> None:
    core = core_with(sqlite_url, nominatim)
    start_report(core, "u")
    core.location("u", -0.8892, 119.8658)
    core.choose("u", "ph:done")
    outs = core.choose("u", "rv:send")
    assert "PLU-" in texts(outs)
    with core.db.session() as s:
        [rep] = list(s.exec(select(Report)))
    assert rep.place_text == "Jalan Sam Ratulangi, Besusu Barat, Palu"


def test_geocoder_down_names_still_work(sqlite_url: str, nominatim: FakeNominatim) -> None:
    nominatim.down = True
    core = core_with(sqlite_url, nominatim)
    start_report(core, "u")
    outs = core.text("u", "Jalan Towua nomor 12")
    assert "tidak ditemukan" in texts(outs) and core.step("u") == "report.location"
    outs = core.text("u", "kel. besusu brt")
    assert "Besusu Barat" in texts(outs) and core.step("u") == "report.place_confirm"


def test_geocoder_lookups_are_made_before_the_transaction(
    sqlite_url: str, nominatim: FakeNominatim
) -> None:
    """`geocoder_lookups` names exactly the calls the handler will make, so the worker can
    make them outside the transaction; the handler then answers from the cache."""
    from handlers.citizen import geocoder_lookups
    from handlers.events import Inbound

    core = core_with(sqlite_url, nominatim)
    svc = core.svc

    def text(t: str) -> Inbound:
        return Inbound(channel="telegram", external_id="u", chat_id="u", kind="text", text=t)

    gps = Inbound(channel="telegram", external_id="u", chat_id="u", kind="location",
                  lat=-0.8892, lon=119.8658)  # fmt: skip
    outside = Inbound(channel="telegram", external_id="u", chat_id="u", kind="location",
                      lat=-6.2, lon=106.8)  # fmt: skip
    assert geocoder_lookups(svc, "report.description", text("Jalan Towua nomor 12")) == []
    assert geocoder_lookups(svc, "report.location", text("kel. besusu brt")) == []  # local name
    assert geocoder_lookups(svc, "report.location", text("Jalan Towua nomor 12")) == [
        ("geocode", ("Jalan Towua nomor 12, Kota Palu",))
    ]
    assert geocoder_lookups(svc, None, gps) == [("reverse", (-0.8892, 119.8658))]
    assert geocoder_lookups(svc, "report.location", outside) == []

    start_report(core, "u")
    for method, args in geocoder_lookups(svc, core.step("u"), text("Jalan Towua nomor 12")):
        getattr(svc.geocoder, method)(*args)  # what the worker does before the transaction
    asked = nominatim.count()
    outs = core.text("u", "Jalan Towua nomor 12")
    assert "Jalan Towua" in texts(outs) and core.step("u") == "report.place_confirm"
    assert nominatim.count() == asked  # answered from the cache inside the transaction


def test_a_down_geocoder_is_not_asked_again_at_once(
    sqlite_url: str, nominatim: FakeNominatim
) -> None:
    nominatim.down = True
    core = core_with(sqlite_url, nominatim)
    start_report(core, "u")
    core.text("u", "Jalan Towua nomor 12")
    asked = nominatim.count()
    nominatim.down = False
    outs = core.text("u", "Jalan Towua nomor 12")  # within the cool-down: no request
    assert "tidak ditemukan" in texts(outs) and nominatim.count() == asked
