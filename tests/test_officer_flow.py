"""Officers at work, through the channel-neutral core: invites, queue groups, every command,
the citizen hearing each step, feedback, hand-over, refusals, duplicates, anonymity."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from handlers.events import Inbound, Outgoing
from handlers.officer import create_invite, install
from storage.models import ReportEvent, Staff
from storage.work_models import Invite
from storage.work_repo import WorkRepo
from tests.core_harness import CoreHarness, choice_ids, texts

CITIZEN, OFFICER, HEAD, OTHER, ADMIN, FAN = "100", "200", "201", "300", "400", "500"
GROUP = "-1001"


def officer_core(url: str) -> CoreHarness:
    core = CoreHarness(url)
    install(core.svc)
    return core


def make_staff(core: CoreHarness, user: str, role: str, opd: str | None) -> None:
    def do(repo):  # type: ignore[no-untyped-def]
        _ident, person, _ = repo.get_or_create_identity(
            "telegram", user, user, language="id", display_name=f"Petugas {user}"
        )
        repo.set_staff(person.id, role, opd)

    core.repo_call(do)


def group_cmd(core: CoreHarness, user: str, text: str, chat: str = GROUP) -> list[Outgoing]:
    head, _, args = text[1:].partition(" ")
    return core.send(
        Inbound(
            channel="telegram",
            external_id=user,
            chat_id=chat,
            chat_type="group",
            kind="command",
            command=head,
            args=args,
            text=text,
        )
    )


def group_press(core: CoreHarness, user: str, choice: str, chat: str = GROUP) -> list[Outgoing]:
    return core.send(
        Inbound(
            channel="telegram",
            external_id=user,
            chat_id=chat,
            chat_type="group",
            kind="choice",
            choice=choice,
        )
    )


def to(outs: list[Outgoing], address: str) -> list[Outgoing]:
    return [o for o in outs if o.address == address]


def palu_point(core: CoreHarness, name: str = "Besusu Barat") -> tuple[float, float]:
    kel = next(k for k in core.city.kelurahan if k.name == name)
    return kel.centroid


def file_report(
    core: CoreHarness,
    user: str = CITIZEN,
    category: str = "sampah",
    point: tuple[float, float] | None = None,
    photo: bool = True,
    before_send: tuple[str, ...] = (),
) -> list[Outgoing]:
    core.text(user, "/lapor")
    core.choose(user, f"cat:{category}")
    core.text(user, "Sampah menumpuk di pinggir jalan sudah tiga hari, bau sekali")
    lat, lon = point or palu_point(core)
    core.location(user, lat, lon)
    if photo:
        core.photo(user)  # the review card follows
    else:
        core.choose(user, "ph:done")
    for choice in before_send:
        core.choose(user, choice)
    return core.choose(user, "rv:send")


def code_in(outs: list[Outgoing]) -> str:
    m = re.search(r"PLU-\d{4}-\d{4}", texts(outs))
    assert m, texts(outs)
    return m.group(0)


def report(core: CoreHarness, code: str):  # type: ignore[no-untyped-def]
    return core.repo_call(lambda r: r.report_by_code(code))


def track(core: CoreHarness, code: str):  # type: ignore[no-untyped-def]
    rep = report(core, code)
    return core.repo_call(lambda r: WorkRepo(r).track(rep.id))


def events(core: CoreHarness, code: str) -> list[ReportEvent]:
    rep = report(core, code)
    return core.repo_call(lambda r: r.events(rep.id, include_internal=True))


@pytest.fixture
def core(sqlite_url: str) -> CoreHarness:
    c = officer_core(sqlite_url)
    make_staff(c, OFFICER, "officer", "DLH")
    make_staff(c, HEAD, "head", "DLH")
    make_staff(c, OTHER, "officer", "PUPR")
    make_staff(c, ADMIN, "admin", None)
    return c


# --- invites ----------------------------------------------------------------------------------
def test_invite_code_is_one_time_hashed_and_expires(db_url: str) -> None:
    core = officer_core(db_url)
    now = core.clock.now
    code = core.repo_call(lambda r: create_invite(r, "DLH", "officer", now, days=7))
    stored = core.repo_call(lambda r: list(r._s.exec(select(Invite))))
    assert len(stored) == 1 and code not in stored[0].code_hash  # only the hash is stored
    assert "tidak berlaku" in texts(core.text("700", "/daftar WRONG-CODE-0000"))
    out = core.text("700", f"/daftar {code.lower()}")  # case and dashes do not matter
    assert "DLH" in texts(out)
    staff = core.repo_call(lambda r: list(r._s.exec(select(Staff))))
    assert [(s.role, s.opd) for s in staff] == [("officer", "DLH")]
    assert "tidak berlaku" in texts(core.text("701", f"/daftar {code}"))  # used
    late = core.repo_call(lambda r: create_invite(r, "PUPR", "head", now, days=7))
    core.clock.now = now + timedelta(days=8)
    assert "tidak berlaku" in texts(core.text("702", f"/daftar {late}"))
    assert core.repo_call(lambda r: r.staff_list(opd="PUPR")) == []
    # in a group the code is not taken (and the person is told to use a private chat)
    core.clock.now = now
    fresh = core.repo_call(lambda r: create_invite(r, "PUPR", "head", now, days=7))
    group_cmd(core, "703", f"/daftar {fresh}")
    assert core.repo_call(lambda r: r.staff_list(opd="PUPR")) == []


# --- the whole cycle --------------------------------------------------------------------------
def test_report_to_group_card_then_every_step_reaches_the_citizen(db_url: str) -> None:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    make_staff(core, HEAD, "head", "DLH")
    out = group_cmd(core, OFFICER, "/hubungkan DLH")  # an officer may not link
    assert "hanya admin atau kepala" in texts(out).lower()
    out = group_cmd(core, HEAD, "/hubungkan DLH")
    assert "antrean" in texts(out).lower()

    out = file_report(core)
    code = code_in(out)
    [card] = to(out, GROUP)
    assert (
        code in card.reply.text
        and "Sampah" in card.reply.text
        and "Besusu Barat" in card.reply.text
    )
    assert "openstreetmap.org/?mlat=" in card.reply.text
    assert card.reply.photo is not None and card.reply.photo.sha256 == "a" * 64
    rid = report(core, code).id
    assert f"op:ambil:{rid}" in [c.id for c in card.reply.choices]
    assert "Pelapor: kontak tidak dibagikan" in card.reply.text

    out = group_cmd(core, OFFICER, f"/ambil {code}")
    assert track(core, code).assigned_person_id is not None
    assert to(out, CITIZEN) == []  # assignment is internal

    out = group_cmd(core, OFFICER, f"/proses {code} Truk dijadwalkan besok pagi")
    [push] = to(out, CITIZEN)
    assert code in push.reply.text and "Truk dijadwalkan besok pagi" in push.reply.text
    rep = report(core, code)
    assert rep.status == "diproses" and rep.first_response_at is not None

    out = group_cmd(core, OFFICER, f"/catatan {code} warga sekitar minta jam pagi")
    assert to(out, CITIZEN) == []
    assert events(core, code)[-1].internal is True

    out = group_cmd(core, OFFICER, f"/selesai {code} Sampah sudah diangkut")
    [push] = to(out, CITIZEN)
    assert "Sampah sudah diangkut" in push.reply.text
    assert choice_ids([push]) == [f"fb:ya:{rid}", f"fb:belum:{rid}"]
    assert "pribadi" in texts(to(out, GROUP))  # proof photo goes in the private chat
    out = core.photo(OFFICER, sha="b" * 64)  # the proof, in the officer's private chat
    [proof] = to(out, CITIZEN)
    assert proof.reply.photo is not None and proof.reply.photo.sha256 == "b" * 64
    photos = core.repo_call(lambda r: r.photos(rid, role="proof"))
    assert [p.sha256 for p in photos] == ["b" * 64]

    # "Belum": reopened in the same OPD's queue, with the citizen's comment
    out = core.choose(CITIZEN, f"fb:belum:{rid}")
    rep = report(core, code)
    assert rep.status == "diproses" and rep.opd == "DLH" and rep.resolved_at is None
    assert events(core, code)[-1].kind == "reopened"
    assert code in texts(to(out, GROUP))
    out = core.text(CITIZEN, "Masih ada sisa sampah di selokan")
    assert "Masih ada sisa sampah di selokan" in texts(to(out, GROUP))
    assert track(core, code).cycle == 1

    group_cmd(core, OFFICER, f"/selesai {code} Selokan sudah dibersihkan")
    out = core.choose(CITIZEN, f"fb:ya:{rid}")
    assert choice_ids(out) == [f"fb:nilai:{rid}:{n}" for n in range(1, 6)]
    core.choose(CITIZEN, f"fb:nilai:{rid}:4")
    t = track(core, code)
    assert t.rating == 4 and t.feedback == "yes" and t.closed_at is not None
    out = core.choose(CITIZEN, f"fb:nilai:{rid}:1")  # once only
    assert track(core, code).rating == 4
    # the citizen's history shows the steps, never the internal note
    status = texts(core.text(CITIZEN, f"/status {code}"))
    assert "Truk dijadwalkan" in status and "warga sekitar" not in status
    assert "dibuka kembali" in status


def test_without_a_group_the_officers_get_the_card_privately(core: CoreHarness) -> None:
    out = file_report(core)
    assert to(out, OFFICER) and to(out, HEAD)
    assert to(out, OTHER) == [] and to(out, ADMIN) == []
    assert to(out, OFFICER)[0].reply.choices


def test_buttons_in_private_chat_ask_for_the_note(core: CoreHarness) -> None:
    code = code_in(file_report(core))
    rid = report(core, code).id
    core.choose(OFFICER, f"op:ambil:{rid}")
    out = core.choose(OFFICER, f"op:proses:{rid}")
    assert report(core, code).status == "diproses" and to(out, CITIZEN)
    core.choose(OFFICER, f"op:tolak:{rid}")
    assert core.step(OFFICER) == "officer.note"
    out = core.text(OFFICER, "Bukan wewenang kota, lokasi milik swasta")
    assert report(core, code).status == "ditolak"
    assert "Bukan wewenang kota" in texts(to(out, CITIZEN))
    out = core.choose(OFFICER, f"op:selesai:{rid}")  # closed: nothing changes
    assert report(core, code).status == "ditolak" and core.step(OFFICER) is None


def test_hand_over_lands_in_the_other_opds_queue(core: CoreHarness) -> None:
    group_cmd(core, ADMIN, "/hubungkan PUPR", chat="-2002")
    code = code_in(file_report(core))
    group_cmd(core, OFFICER, f"/proses {code}")
    out = core.text(OFFICER, f"/alihkan {code} PUPR Ini selokan tersumbat, bukan sampah")
    rep = report(core, code)
    assert rep.opd == "PUPR" and rep.status == "baru" and rep.first_response_at is None
    [push] = to(out, CITIZEN)
    assert "Dinas PUPR" in push.reply.text and "selokan tersumbat" in push.reply.text
    [card] = to(out, "-2002")
    assert code in card.reply.text and card.reply.choices
    assert events(core, code)[-1].kind == "handover"
    assert track(core, code).cycle == 1
    # DLH can no longer act; PUPR can
    out = core.text(OFFICER, f"/proses {code}")
    assert "Dinas PUPR" in texts(out) and report(core, code).status == "baru"
    core.text(OTHER, f"/proses {code} dicek besok")
    assert report(core, code).status == "diproses"
    # hand-over by button (private): pick the OPD, then the reason
    rid = rep.id
    out = core.choose(OTHER, f"op:alihkan:{rid}")
    assert f"op:ke:{rid}:DLH" in choice_ids(out)
    core.choose(OTHER, f"op:ke:{rid}:DLH")
    core.text(OTHER, "Ternyata memang sampah")
    assert report(core, code).opd == "DLH"


COMMANDS = [
    "/antrian",
    "/lihat {code}",
    "/ambil {code}",
    "/proses {code} catatan",
    "/selesai {code} catatan",
    "/tolak {code} alasan",
    "/alihkan {code} PUPR alasan",
    "/catatan {code} teks",
    "/statistik",
]


@pytest.mark.parametrize("who", [CITIZEN, OTHER])
def test_unauthorized_commands_are_refused_and_change_nothing(core: CoreHarness, who: str) -> None:
    code = code_in(file_report(core))
    rid = report(core, code).id
    before = len(events(core, code))
    for cmd in COMMANDS:
        text = cmd.format(code=code)
        for out in (core.text(who, text), group_cmd(core, who, text)):
            said = texts(out)
            assert code not in said or "milik DLH" in said, (cmd, said)  # nothing shown
            if who == OTHER and cmd == "/antrian" and out[0].address == who:
                assert "Dinas PUPR" in said  # their own queue, not DLH's
                continue
            refused = ("hanya" in said.lower()) or ("belum terhubung" in said)
            assert refused, (cmd, said)
    for action in ("ambil", "proses", "selesai", "tolak", "alihkan", "lihat"):
        out = core.choose(who, f"op:{action}:{rid}")
        assert "hanya" in texts(out).lower()
    rep = report(core, code)
    assert rep.status == "baru" and rep.opd == "DLH"
    assert len(events(core, code)) == before
    assert track(core, code).assigned_person_id is None
    # and the citizen's feedback buttons are refused for anyone else
    group_cmd(core, OFFICER, "/hubungkan DLH")  # (an officer cannot link either)
    core.text(OFFICER, f"/selesai {code} beres")
    out = core.choose(OTHER, f"fb:belum:{rid}")
    assert report(core, code).status == "selesai"


def test_queue_is_paged_oldest_first_with_overdue_marked(core: CoreHarness) -> None:
    codes = []
    for i in range(7):
        point = core.city.kelurahan[i * 3].centroid  # far apart: no duplicate prompt
        codes.append(code_in(file_report(core, user=f"9{i}", photo=False, point=point)))
        core.clock.now += timedelta(hours=1)
    assert len(set(codes)) == len(codes)
    core.clock.now += timedelta(days=6)  # response deadline (3 working days) passed
    out = core.text(OFFICER, "/antrian")
    text = texts(out)
    assert "7" in text and "⏰" in text
    listed = re.findall(r"PLU-\d{4}-\d{4}", text.split("\n", 1)[1])
    assert listed == codes[:5]
    assert "op:q:1:DLH" in choice_ids(out)
    out = core.choose(OFFICER, "op:q:1:DLH")
    assert re.findall(r"PLU-\d{4}-\d{4}", texts(out).split("\n", 1)[1]) == codes[5:]
    # another OPD's officer sees their own (empty) queue, not DLH's
    assert "PLU-" not in texts(core.text(OTHER, "/antrian"))
    assert "Dinas PUPR" in texts(core.text(OTHER, "/antrian DLH"))


def test_anonymous_and_contact_consent_on_the_officer_card(core: CoreHarness) -> None:
    out = file_report(core, before_send=("rv:anon",))
    code = code_in(out)
    assert report(core, code).anonymous is True
    assert "Pelapor: anonim" in texts(to(out, OFFICER))

    def named(repo):  # type: ignore[no-untyped-def]
        repo.get_or_create_identity(
            "telegram",
            "101",
            "101",
            language="id",
            display_name="Budi Santoso",
            phone="+6281234567",
        )

    core.repo_call(named)
    out = file_report(core, user="101", point=palu_point(core, "Lere"), before_send=("rv:contact",))
    code2 = code_in(out)
    assert report(core, code2).anonymous is False
    assert "Budi Santoso · tg://user?id=101 · ☎️ +6281234567" in texts(to(out, OFFICER))
    # withdrawn consent: hidden again
    core.repo_call(
        lambda r: r.set_share_contact(r.person_view(report(core, code2).person_id), False)
    )
    card = texts(core.text(OFFICER, f"/lihat {code2}"))
    assert "Budi" not in card and "kontak tidak dibagikan" in card
    card = texts(core.text(OFFICER, f"/lihat {code}"))
    assert "Pelapor: anonim" in card


def test_duplicate_nearby_offers_support_and_follower_hears_updates(db_url: str) -> None:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    code = code_in(file_report(core))
    lat, lon = palu_point(core)
    near = (lat + 0.0002, lon)  # about 22 m away
    core.text(FAN, "/lapor")
    core.choose(FAN, "cat:sampah")
    core.text(FAN, "Sampah menumpuk lagi di pinggir jalan yang sama")
    out = core.location(FAN, *near)  # offered right after the place, before the photo
    assert code in texts(out) and "22 m dari sini" in texts(out)
    assert "dup:new" in choice_ids(out)
    assert core.step(FAN) == "dup.choose"
    rid = report(core, code).id
    out = core.choose(FAN, f"dup:follow:{rid}")
    assert report(core, code).supporters == 1
    assert core.repo_call(lambda r: len(r._s.exec(select(ReportEvent)).all())) == 1
    out = core.text(OFFICER, f"/proses {code} segera diangkut")
    assert to(out, FAN) and to(out, CITIZEN)
    assert "segera diangkut" in texts(to(out, FAN))
    assert code in texts(core.text(FAN, f"/status {code}"))  # followers may look it up
    # a report far away, or of another category, is not a duplicate
    out = file_report(core, user="501", point=palu_point(core, "Lere"))
    assert core.step("501") is None and code_in(out) != code
    out = file_report(core, user="502", category="jalan_rusak", point=near)
    assert core.step("502") is None
    # "no, go on with mine": the report goes on (photo, review) and is sent as a new one
    core.text("503", "/lapor")
    core.choose("503", "cat:sampah")
    core.text("503", "Tumpukan sampah di dekat sini juga")
    core.location("503", *near)
    out = core.choose("503", "dup:new")
    assert core.step("503") == "report.photo"
    core.photo("503")
    out = core.choose("503", "rv:send")  # no second offer
    assert code_in(out) != code and core.step("503") is None


def test_statistics_for_heads_and_admins(core: CoreHarness) -> None:
    code = code_in(file_report(core))
    core.clock.now += timedelta(hours=5)
    core.text(OFFICER, f"/proses {code}")
    core.clock.now += timedelta(days=1)
    core.text(OFFICER, f"/selesai {code} beres")
    text = texts(core.text(HEAD, "/statistik"))
    assert "DLH" in text and "Selesai 1" in text and "100 %" in text
    assert "Dinas PUPR" not in text
    text = texts(core.text(ADMIN, "/statistik"))
    assert "DLH" in text
    assert "hanya untuk admin" in texts(core.text(OFFICER, "/statistik")).lower()


def test_the_officer_hears_whether_the_citizen_was_told(core: CoreHarness) -> None:
    """'The citizen has been told' only when a message to them was queued: a reporter with no
    chat left (blocked the bot, or reported through another city app) is said to be out of
    reach instead."""
    code = code_in(file_report(core))
    out = core.text(OFFICER, f"/proses {code} Truk dijadwalkan")
    assert "Warga sudah diberi tahu" in texts(to(out, OFFICER)) and to(out, CITIZEN)
    rep = report(core, code)

    def blocked(repo):  # type: ignore[no-untyped-def]
        for ident in repo.identities_of(rep.person_id):
            repo.deactivate_identity(ident.id)

    core.repo_call(blocked)
    out = core.text(OFFICER, f"/selesai {code} Sampah sudah diangkut")
    assert to(out, CITIZEN) == []
    reply = texts(to(out, OFFICER))
    assert "tidak bisa diberi tahu" in reply and "sudah diberi tahu" not in reply
