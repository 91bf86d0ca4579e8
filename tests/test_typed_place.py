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
    core.use_geocoder(Geocoder(fake.url, "lapor-warga-tests/1", timeout=2))
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


def test_the_geocoder_question_names_what_each_place_step_can_use(
    sqlite_url: str, nominatim: FakeNominatim
) -> None:
    """`geocoder_question` says which lookup an event at a step can use; the worker asks it
    before the transaction. Typed text is looked up at both place steps (the place_confirm
    step too, where a new place may be typed), never elsewhere or for a known name."""
    from handlers.citizen.places import GeoQuestion, geocoder_question
    from handlers.events import Inbound

    svc = core_with(sqlite_url, nominatim).svc

    def text(t: str) -> Inbound:
        return Inbound(channel="telegram", external_id="u", chat_id="u", kind="text", text=t)

    gps = Inbound(channel="telegram", external_id="u", chat_id="u", kind="location",
                  lat=-0.8892, lon=119.8658)  # fmt: skip
    outside = Inbound(channel="telegram", external_id="u", chat_id="u", kind="location",
                      lat=-6.2, lon=106.8)  # fmt: skip
    towua = GeoQuestion("forward", query="Jalan Towua nomor 12, Kota Palu")
    assert geocoder_question(svc, "report.description", text("Jalan Towua nomor 12")) is None
    assert geocoder_question(svc, "report.location", text("kel. besusu brt")) is None
    assert geocoder_question(svc, "report.location", text("Jalan Towua nomor 12")) == towua
    assert geocoder_question(svc, "report.place_confirm", text("Jalan Towua nomor 12")) == towua
    reverse = GeoQuestion("reverse", lat=-0.8892, lon=119.8658)
    assert geocoder_question(svc, None, gps) == reverse
    assert geocoder_question(svc, "report.place_confirm", gps) == reverse
    assert geocoder_question(svc, "sub.pick", gps) is None
    assert geocoder_question(svc, "report.location", outside) is None


def test_a_new_place_typed_at_the_confirmation_is_looked_up(
    sqlite_url: str, nominatim: FakeNominatim
) -> None:
    core = core_with(sqlite_url, nominatim)
    start_report(core, "u")
    core.text("u", "kel. besusu brt")
    assert core.step("u") == "report.place_confirm"
    outs = core.text("u", "Jalan Towua nomor 12")  # "no, here": typed at the confirmation
    assert "Jalan Towua" in texts(outs) and core.step("u") == "report.place_confirm"
    assert nominatim.count("/search") == 1


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
