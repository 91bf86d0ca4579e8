"""The citizen's conversation, driven through the channel-neutral core."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from storage.models import Report
from tests.core_harness import CoreHarness, choice_ids, texts

JAKARTA = (-6.2, 106.8)


@pytest.fixture
def core(sqlite_url: str) -> CoreHarness:
    return CoreHarness(sqlite_url)


def palu_point(core: CoreHarness, name: str = "Besusu Barat") -> tuple[float, float]:
    kel = next(k for k in core.city.kelurahan if k.name == name)
    return kel.centroid[0], kel.centroid[1]


def file_report(core: CoreHarness, user: str = "100") -> list:
    core.text(user, "/lapor")
    core.choose(user, "cat:jalan_rusak")
    core.text(user, "Jalan berlubang besar di depan sekolah, bahaya untuk motor")
    lat, lon = palu_point(core)
    core.location(user, lat, lon)
    core.photo(user)  # the review card follows the photo
    return core.choose(user, "rv:send")


def reports(core: CoreHarness) -> list[Report]:
    from sqlmodel import select

    return core.repo_call(lambda r: list(r._s.exec(select(Report))))


def test_full_report_with_gps_and_photo(db_url: str) -> None:
    core = CoreHarness(db_url)
    outs = core.text("100", "/lapor")
    assert "cat:jalan_rusak" in choice_ids(outs)
    assert core.step("100") == "report.category"
    outs = core.choose("100", "cat:jalan_rusak")
    assert core.step("100") == "report.description"
    outs = core.text("100", "Jalan berlubang besar di depan sekolah, bahaya untuk motor")
    assert outs[0].reply.ask_location
    lat, lon = palu_point(core)
    outs = core.location("100", lat, lon)
    assert core.step("100") == "report.photo"
    outs = core.photo("100")  # straight on to the review card, which can add another photo
    assert core.step("100") == "report.review"
    assert {"rv:send", "ph:more"} <= set(choice_ids(outs))
    card = texts(outs)
    assert "Besusu Barat" in card and "Jalan rusak" in card and "Dinas PUPR" in card
    outs = core.choose("100", "rv:send")
    code = re.search(r"PLU-\d{4}-\d{4}", texts(outs))
    assert code, texts(outs)
    assert code.group(0) == "PLU-2611-0001"
    assert core.step("100") is None
    [rep] = reports(core)
    assert rep.code == "PLU-2611-0001"
    assert rep.opd == "PUPR" and rep.status == "baru" and rep.kode_kel == "72.71.01.1004"
    assert rep.kode_kec == "72.71.01"
    photos = core.repo_call(lambda r: r.photos(rep.id))
    assert len(photos) == 1 and photos[0].sha256 == "a" * 64
    events = core.repo_call(lambda r: r.events(rep.id))
    assert [e.kind for e in events] == ["created"]


def test_outbox_gets_every_reply_in_the_same_transaction(core: CoreHarness) -> None:
    file_report(core)
    counts = core.repo_call(lambda r: r.outbox_counts())
    assert counts.get("pending") == 6  # one answer per event


def test_location_outside_the_city_is_refused(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    outs = core.location("u", *JAKARTA)
    assert "di luar Kota Palu" in texts(outs)
    assert core.step("u") == "report.location"
    assert outs[0].reply.ask_location


def test_impossible_coordinates_get_a_clear_message(core: CoreHarness) -> None:
    outs = core.location("u", 123.0, 500.0)
    assert "tidak terbaca" in texts(outs)


def test_typed_kelurahan_with_abbreviation_is_confirmed(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    outs = core.text("u", "kel. besusu brt")
    assert core.step("u") == "report.place_confirm"
    assert "Besusu Barat" in texts(outs)
    core.choose("u", "loc:yes")
    assert core.step("u") == "report.photo"
    core.choose("u", "ph:done")
    core.choose("u", "rv:send")
    [rep] = reports(core)
    assert rep.kode_kel == "72.71.01.1004" and rep.location_source == "typed"
    assert rep.opd == "DLH"


def test_unknown_place_is_explained(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    outs = core.text("u", "qwxz plorf")
    assert "tidak ditemukan" in texts(outs)
    assert core.step("u") == "report.location"


def test_description_length_is_checked(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    assert "minimal 5" in texts(core.text("u", "abc"))
    assert "Terlalu panjang" in texts(core.text("u", "x" * 2001))
    assert core.step("u") == "report.description"


def test_invisible_characters_do_not_make_a_description(core: CoreHarness) -> None:
    """Eight zero-width characters (and friends: BOM, word joiner, line separator) look
    longer than five but say nothing: refused as too short; visible text keeps its words."""
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    for blank in ("\u200b" * 8, "\u200c\u200d\ufeff\u2060" * 3, " \u2028\u2029 " * 4):
        assert "minimal 5" in texts(core.text("u", blank))
        assert core.step("u") == "report.description"
    core.text("u", "\u200bSampah\u200b menumpuk")
    assert core.step("u") != "report.description"
    data = core.repo_call(lambda r: r.conversation_state(r.who("telegram", "u")[0].id))[1]
    assert data["description"] == "Sampah menumpuk"
    # with no report under way, an invisible text does not start one either
    core.text("v", "\u200b" * 20)
    assert core.step("v") is None


def test_photo_outside_a_report_starts_one(core: CoreHarness) -> None:
    outs = core.photo("u")
    assert "Foto diterima" in texts(outs)
    assert core.step("u") == "report.category"
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    outs = core.location("u", *palu_point(core))
    # The photo is already there: the review card, where another one may be added.
    assert core.step("u") == "report.review"
    assert "Foto: 1" in texts(outs) and "ph:more" in choice_ids(outs)


def test_location_outside_a_report_starts_one(core: CoreHarness) -> None:
    outs = core.location("u", *palu_point(core, "Talise"))
    assert "Talise" in texts(outs)
    assert core.step("u") == "report.category"


def test_bad_photo_is_refused_with_reason(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    assert "terlalu besar" in texts(core.photo("u", error="too_large"))
    assert "JPEG" in texts(core.photo("u", error="bad_type"))


def test_three_photos_at_most(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    core.location("u", *palu_point(core))
    for i in range(2):
        core.photo("u", sha=str(i) * 64)
    outs = core.photo("u", sha="2" * 64)
    assert core.step("u") == "report.review"
    assert "Foto: 3" in texts(outs)


def test_double_tap_on_send_creates_one_report(core: CoreHarness) -> None:
    file_report(core)
    outs = core.choose("100", "rv:send")
    assert "tidak berlaku" in texts(outs)
    assert len(reports(core)) == 1


def test_edit_from_review_returns_to_review(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    core.text("u", "Sampah menumpuk di pinggir jalan")
    core.location("u", *palu_point(core))
    core.choose("u", "ph:done")
    core.choose("u", "rv:edit")
    core.choose("u", "ed:category")
    assert core.step("u") == "report.category"
    outs = core.choose("u", "cat:lampu_jalan")
    assert core.step("u") == "report.review"
    assert "Lampu jalan" in texts(outs)


def test_cancel_clears_the_draft(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    assert "Dibatalkan" in texts(core.text("u", "/batal"))
    assert core.step("u") is None
    assert "Tidak ada" in texts(core.text("u", "/batal"))


def test_my_reports_and_status(core: CoreHarness) -> None:
    file_report(core, "100")
    outs = core.text("100", "/laporanku")
    assert "PLU-2611-0001" in texts(outs) and "Baru" in texts(outs)
    outs = core.text("100", "/status plu-2611-0001")
    assert "Riwayat" in texts(outs) and "laporan diterima" in texts(outs)
    # Someone else cannot read it.
    outs = core.text("200", "/status PLU-2611-0001")
    assert "tidak ditemukan" in texts(outs)


def test_report_codes_count_per_month(core: CoreHarness) -> None:
    file_report(core, "1")
    file_report(core, "2")
    core.clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 WITA, December
    file_report(core, "3")
    assert sorted(r.code for r in reports(core)) == [
        "PLU-2611-0001",
        "PLU-2611-0002",
        "PLU-2612-0001",
    ]


def test_language_switch_to_english(core: CoreHarness) -> None:
    core.text("u", "/bahasa")
    outs = core.choose("u", "lang:en")
    assert texts(outs) == "Language set to English."
    outs = core.text("u", "/lapor")
    assert "Choose a category" in texts(outs)
    assert any("Damaged road" in c.label for o in outs for c in o.reply.choices)
    outs = core.choose("u", "lang:id")
    assert "Bahasa Indonesia" in texts(outs)


def test_unknown_command_and_stale_button(core: CoreHarness) -> None:
    assert "/bantuan" in texts(core.text("u", "/xyz"))
    assert "tidak berlaku" in texts(core.choose("u", "rv:send"))


def test_wrong_input_at_a_step_gets_that_steps_hint(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    assert "pilih salah satu kategori" in texts(core.text("u", "halo"))
    core.choose("u", "cat:sampah")
    assert "ceritakan" in texts(core.location("u", *palu_point(core))).lower()


def test_group_messages_are_ignored(core: CoreHarness) -> None:
    from handlers.events import Inbound

    outs = core.send(
        Inbound(
            channel="telegram",
            external_id="5",
            chat_id="-100",
            kind="text",
            text="halo",
            chat_type="group",
        )
    )
    assert outs == []
    outs = core.send(
        Inbound(
            channel="telegram",
            external_id="5",
            chat_id="-100",
            kind="command",
            command="lapor",
            chat_type="group",
        )
    )
    assert outs == []


def test_huge_text_is_cut_not_crashing(core: CoreHarness) -> None:
    core.text("u", "/lapor")
    core.choose("u", "cat:sampah")
    outs = core.text("u", "y" * 100_000)
    assert "Terlalu panjang" in texts(outs)
