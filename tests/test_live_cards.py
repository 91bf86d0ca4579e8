"""Live queue cards, through the core: every change edits the report's card in the queue group
(status, officer, the buttons that still apply), a claim there names the officer, ✅ / ⛔ / ↪️
pressed in the group ask for the note in place, and officers on WhatsApp (no edits) get a short
line instead."""

from __future__ import annotations

from handlers.events import KIND_CARD, KIND_CARD_EDIT, Inbound, Outgoing
from tests.core_harness import CoreHarness, choice_ids, texts
from tests.test_officer_flow import (
    CITIZEN,
    GROUP,
    HEAD,
    OFFICER,
    code_in,
    file_report,
    group_cmd,
    group_press,
    make_staff,
    officer_core,
    report,
    to,
)


def group_reply(core: CoreHarness, user: str, text: str, *, to_bot: bool = True) -> list[Outgoing]:
    """A text in the group; `to_bot`: it answers one of the bot's messages (Telegram reply)."""
    return core.send(
        Inbound(
            channel="telegram",
            external_id=user,
            chat_id=GROUP,
            chat_type="group",
            kind="text",
            text=text,
            reply_to_bot=to_bot,
        )
    )


def edits(outs: list[Outgoing], address: str = GROUP) -> list[Outgoing]:
    return [o for o in outs if o.address == address and o.kind == KIND_CARD_EDIT]


def linked(db_url: str) -> CoreHarness:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    make_staff(core, HEAD, "head", "DLH")
    group_cmd(core, HEAD, "/hubungkan DLH")
    return core


def test_the_group_card_is_edited_on_every_change(db_url: str) -> None:
    core = linked(db_url)
    out = file_report(core)
    code = code_in(out)
    rid = report(core, code).id
    [card] = to(out, GROUP)
    assert card.kind == KIND_CARD and card.meta["card_of"] == rid and card.report_id == rid
    assert "Status: Baru" in card.reply.text

    out = group_press(core, OFFICER, f"op:ambil:{rid}")
    ack = [o for o in to(out, GROUP) if o.kind != KIND_CARD_EDIT]
    assert texts(ack) == f"Laporan {code} diambil oleh Petugas {OFFICER}."  # not "kepada Anda"
    [edit] = edits(out)
    text = edit.reply.text
    assert edit.meta["card_of"] == rid and edit.reply.photo is not None  # still the photo card
    assert f"Petugas: Petugas {OFFICER}" in text and f"🙋 Diambil oleh Petugas {OFFICER}" in text
    assert text.count("Ditangani oleh:") == 1 and "Ditangani oleh: DLH" in text
    assert "WITA" in text  # when it changed
    assert f"op:ambil:{rid}" not in choice_ids([edit])  # taken: no "Take" any more
    assert f"op:proses:{rid}" in choice_ids([edit])

    out = group_cmd(core, OFFICER, f"/proses {code} Truk dijadwalkan besok pagi")
    [edit] = edits(out)
    assert "Status: Diproses" in edit.reply.text
    assert "Truk dijadwalkan besok pagi" in edit.reply.text
    assert choice_ids([edit]) == [f"op:selesai:{rid}", f"op:tolak:{rid}", f"op:alihkan:{rid}"]

    out = core.text(OFFICER, f"/selesai {code} Sampah sudah diangkut")  # from the private chat
    [edit] = edits(out)
    assert "Status: Selesai" in edit.reply.text and edit.reply.choices == ()
    # the group also hears it (an edit alone would go unnoticed)
    assert f"Laporan {code} selesai." in texts([o for o in to(out, GROUP) if o.kind == "officer"])


def test_resolve_and_reject_buttons_in_the_group_ask_for_the_note_in_place(db_url: str) -> None:
    core = linked(db_url)
    code = code_in(file_report(core))
    rid = report(core, code).id
    out = group_press(core, OFFICER, f"op:selesai:{rid}")
    [ask] = to(out, GROUP)
    assert ask.reply.force_reply and f"Petugas {OFFICER}, balas pesan ini." in ask.reply.text
    assert core.step(OFFICER) == "officer.note"
    # the group's chatter is not the note: others' replies, and texts that are no reply
    assert group_reply(core, HEAD, "Siap, saya bantu cek") == []
    assert group_reply(core, OFFICER, "sebentar ya", to_bot=False) == []
    assert report(core, code).status == "baru"
    out = group_reply(core, OFFICER, "Sampah sudah diangkut truk pagi ini")
    assert report(core, code).status == "selesai"
    assert "Sampah sudah diangkut truk pagi ini" in texts(to(out, CITIZEN))
    assert edits(out) and "Status: Selesai" in edits(out)[0].reply.text

    code2 = code_in(file_report(core, user="101", point=core.city.kelurahan[9].centroid))
    rid2 = report(core, code2).id
    group_press(core, OFFICER, f"op:tolak:{rid2}")
    # written in the private chat instead: not taken as the reason
    core.text(OFFICER, "Bukan wewenang kota, lokasi milik swasta")
    assert report(core, code2).status == "baru" and core.step(OFFICER) != "officer.note"


def test_hand_over_from_the_group_card(db_url: str) -> None:
    core = linked(db_url)
    make_staff(core, "300", "officer", "PUPR")
    code = code_in(file_report(core))
    rid = report(core, code).id
    out = group_press(core, OFFICER, f"op:alihkan:{rid}")
    assert f"op:ke:{rid}:PUPR" in choice_ids(to(out, GROUP))
    out = group_press(core, OFFICER, f"op:ke:{rid}:PUPR")
    assert to(out, GROUP)[0].reply.force_reply
    out = group_reply(core, OFFICER, "Ini selokan tersumbat, bukan sampah")
    assert report(core, code).opd == "PUPR"
    [edit] = edits(out)  # DLH's card: handed over, nothing left to press there
    assert "↪️ Dialihkan ke Dinas PUPR oleh" in edit.reply.text and edit.reply.choices == ()
    assert [o for o in to(out, "300") if o.kind == KIND_CARD]  # PUPR's new card


def test_officers_on_whatsapp_get_a_short_line_telegram_copies_are_edited(db_url: str) -> None:
    core = officer_core(db_url)  # no queue group: the officers get the card privately
    make_staff(core, OFFICER, "officer", "DLH")

    def whatsapp_officer(repo):  # type: ignore[no-untyped-def]
        _ident, person, _ = repo.get_or_create_identity(
            "whatsapp", "62812000", "62812000", language="id", display_name="Wati"
        )
        repo.set_staff(person.id, "officer", "DLH")

    core.repo_call(whatsapp_officer)
    out = file_report(core)
    code = code_in(out)
    assert to(out, "62812000")[0].kind == KIND_CARD
    out = core.text(OFFICER, f"/ambil {code}")
    [line] = to(out, "62812000")
    assert line.kind == "officer" and line.reply.choices == ()
    assert line.reply.text == f"Laporan {code}: 🙋 Diambil oleh Petugas {OFFICER}"
    [own] = edits(out, OFFICER)  # the officer's own Telegram copy is edited (silently)
    assert f"Petugas: Petugas {OFFICER}" in own.reply.text
