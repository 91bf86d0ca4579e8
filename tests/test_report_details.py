"""What officers and citizens read about a report, through the core: the reporter's contact
exactly as consented (never for an anonymous report), the officers' whole history (labels from
the catalogs, local time, who; paged), a shortened text that says so, and the citizen's
/status with place and description."""

from __future__ import annotations

import re

from handlers.events import Inbound, Outgoing
from tests.core_harness import CoreHarness, choice_ids, texts
from tests.test_officer_flow import (
    CITIZEN,
    OFFICER,
    code_in,
    file_report,
    make_staff,
    officer_core,
    report,
    to,
)

ENGLISH_LEAKS = re.compile(r"\b(proof|assigned|comment|created|handover|rating|status)\b")


def said(core: CoreHarness, user: str, text: str, username: str | None) -> list[Outgoing]:
    head, _, args = text[1:].partition(" ") if text.startswith("/") else ("", "", "")
    return core.send(
        Inbound(
            channel="telegram",
            external_id=user,
            chat_id=user,
            kind="command" if head else "text",
            command=head or None,
            args=args,
            text=text,
            display_name="Budi Santoso",
            username=username,
        )
    )


def test_shared_contact_shows_handle_chat_link_whatsapp_and_phone(db_url: str) -> None:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    said(core, "101", "/start", username="budi_palu")  # the handle comes with every update

    def whatsapp_too(repo):  # type: ignore[no-untyped-def]
        person_id = repo.identity("telegram", "101").person_id
        repo.get_or_create_identity("whatsapp", "6281234567", "6281234567", language="id")
        repo.identity("whatsapp", "6281234567").person_id = person_id

    core.repo_call(whatsapp_too)
    core.text("101", "/lapor")
    core.choose("101", "cat:sampah")
    core.text("101", "Sampah menumpuk di pinggir jalan sudah tiga hari")
    core.location("101", *core.city.kelurahan[3].centroid)
    core.choose("101", "ph:done")
    review = texts(core.choose("101", "rv:contact"))  # consent: the review says what is shared
    shared = "Budi Santoso · @budi_palu · tg://user?id=101 · https://wa.me/6281234567"
    assert f"Petugas akan melihat kontak Anda untuk menindaklanjuti: {shared}" in review
    out = core.choose("101", "rv:send")
    assert f"Pelapor: {shared}" in texts(to(out, OFFICER))
    code = code_in(out)
    # a handle given up is forgotten, not shown stale
    said(core, "101", "/start", username="")  # Telegram: this user has no handle now
    card = texts(core.text(OFFICER, f"/lihat {code}"))
    assert "@budi_palu" not in card and "tg://user?id=101" in card
    # anonymous: nothing at all, even with consent
    core.text("101", "/lapor")
    core.choose("101", "cat:sampah")
    core.text("101", "Sampah lagi di tempat lain, dekat pasar")
    core.location("101", *core.city.kelurahan[12].centroid)
    core.choose("101", "ph:done")
    core.choose("101", "rv:anon")
    out = core.choose("101", "rv:send")
    card = texts(to(out, OFFICER))
    assert "Pelapor: anonim" in card and "Budi" not in card and "wa.me" not in card


def test_officer_history_is_whole_translated_timed_and_names_who(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    make_staff(core, OFFICER, "officer", "DLH")
    code = code_in(file_report(core))  # contact not shared: the citizen is not named
    rid = report(core, code).id
    core.text(OFFICER, f"/ambil {code}")
    core.text(OFFICER, f"/proses {code} Truk dijadwalkan")
    core.text(OFFICER, f"/catatan {code} warga minta pagi")
    core.text(OFFICER, f"/selesai {code} Sudah diangkut")
    core.photo(OFFICER, sha="b" * 64)  # proof
    core.choose(CITIZEN, f"fb:belum:{rid}")
    core.text(CITIZEN, "Masih ada sisa di selokan")
    core.text(OFFICER, f"/selesai {code} Selokan dibersihkan")
    core.choose(CITIZEN, f"fb:ya:{rid}")
    core.choose(CITIZEN, f"fb:nilai:{rid}:4")
    out = core.text(OFFICER, f"/lihat {code}")
    history = out[-1].reply.text
    assert history.startswith(f"Riwayat {code}:")
    lines = history.splitlines()[1:]
    assert len(lines) == 11  # every event, not the last five
    assert all(re.match(r"• \d{1,2} \w{3} 2026 \d\d:\d\d WITA – ", line) for line in lines)
    for label in (
        "laporan diterima · warga",
        f"🔒 diambil petugas · Petugas {OFFICER} (petugas)",
        "Diproses · Petugas 200 (petugas): Truk dijadwalkan",
        "🔒 catatan internal · Petugas 200 (petugas): warga minta pagi",
        "foto bukti ditambahkan",
        "dibuka kembali · warga",
        "komentar pelapor · warga: Masih ada sisa di selokan",
        "dikonfirmasi sudah teratasi",
        "penilaian · warga: ⭐⭐⭐⭐",
    ):
        assert label in history, (label, history)
    assert not ENGLISH_LEAKS.search(history), history
    # the card itself carries no history now, the history its own message
    assert "Riwayat" not in out[0].reply.text


def test_a_long_history_is_paged_and_nothing_is_lost(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    make_staff(core, OFFICER, "officer", "DLH")
    code = code_in(file_report(core))
    for i in range(40):
        core.text(OFFICER, f"/catatan {code} catatan nomor {i:02d} " + "x" * 80)
    out = core.text(OFFICER, f"/lihat {code}")
    first = out[-1]
    assert re.match(rf"Riwayat {code} \(halaman 1 dari (\d+)\):", first.reply.text)
    pages = int(re.search(r"dari (\d+)", first.reply.text).group(1))  # type: ignore[union-attr]
    assert pages >= 2 and all(len(o.reply.text) <= 3500 for o in out)
    rid = report(core, code).id
    seen = set(re.findall(r"catatan nomor (\d\d)", first.reply.text))
    page = first
    for n in range(1, pages):
        assert f"op:riwayat:{rid}:{n}" in choice_ids([page])  # "Next ➡️"
        page = core.choose(OFFICER, f"op:riwayat:{rid}:{n}")[-1]
        assert f"(halaman {n + 1} dari {pages})" in page.reply.text
        seen |= set(re.findall(r"catatan nomor (\d\d)", page.reply.text))
    assert f"op:riwayat:{rid}:{pages - 2}" in choice_ids([page])  # "⬅️ Previous"
    assert seen == {f"{i:02d}" for i in range(40)}


def test_a_shortened_description_says_so_and_where_the_rest_is(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    core.repo_call(
        lambda r: r.set_staff(
            r.get_or_create_identity("whatsapp", "62812000", "62812000", language="id")[1].id,
            "officer",
            "DLH",
        )
    )
    description = ("Sampah menumpuk di pinggir jalan dan selokan tersumbat. " * 21)[:1155]
    core.text(CITIZEN, "/lapor")
    core.choose(CITIZEN, "cat:sampah")
    core.text(CITIZEN, description)
    core.location(CITIZEN, *core.city.kelurahan[3].centroid)
    core.choose(CITIZEN, "ph:done")
    out = core.choose(CITIZEN, "rv:send")
    code = code_in(out)
    [card] = to(out, "62812000")
    assert len(card.reply.text) <= 1000  # a WhatsApp button message holds 1024
    assert f"… (dipersingkat; teks lengkap: lihat {code})" in card.reply.text  # typed word
    # /lihat: the card, then the whole text, then the history
    out = core.send(
        Inbound(
            channel="whatsapp",
            external_id="62812000",
            chat_id="62812000",
            kind="command",
            command="lihat",
            args=code,
        )
    )
    assert "… (dipersingkat; teks lengkapnya menyusul di bawah)" in out[0].reply.text
    assert out[1].reply.text == f"Uraian laporan {code}:\n{description.strip()}"
    assert out[2].reply.text.startswith(f"Riwayat {code}")


def test_citizen_status_shows_what_and_where(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    code = code_in(file_report(core))
    status = texts(core.text(CITIZEN, f"/status {code}"))
    assert "Tempat: Kel. Besusu Barat, Kec. Palu Timur" in status
    assert "Sampah menumpuk di pinggir jalan sudah tiga hari, bau sekali" in status
    assert re.search(r"• \d{1,2} Nov 2026 \d\d:\d\d WITA – laporan diterima", status)


def test_every_event_kind_has_a_label_from_the_catalogs_in_every_view() -> None:
    """Including Open311's public notes (the map's card): never a stored key like "proof"."""
    from bot.i18n import I18n
    from handlers.history import event_label

    i18n = I18n("id")
    kinds = ["created", "assigned", "note", "handover", "reopened", "proof", "comment"]
    kinds += ["confirmed", "rating", "closed", "status", "a_kind_added_later"]
    for view in ("citizen", "officer", "public"):
        for kind in kinds:
            status = "diproses" if kind == "status" else None
            en = event_label(lambda m: i18n.gettext("en", m), kind, status, view)
            ind = event_label(lambda m: i18n.gettext("id", m), kind, status, view)
            assert en and ind != kind, (view, kind)  # (English "reopened" is its own key)
            assert ind != en, (view, kind, "not translated")
