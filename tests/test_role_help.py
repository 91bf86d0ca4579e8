"""Help and command menus by role, through the core (`Core.run_batch`): /bantuan lists what the
person's roles may do, WhatsApp names commands as typed words, and a staff member's Telegram
menu is an outbox message written when the role is given or taken."""

from __future__ import annotations

from handlers import help as helptext
from handlers.events import KIND_COMMANDS, Inbound, Outgoing
from handlers.officer import create_invite
from tests.core_harness import CoreHarness, texts

CITIZEN, OFFICER, HEAD, ADMIN = "100", "200", "201", "400"
OFFICER_ONLY = ("/antrian", "/ambil KODE", "/selesai KODE catatan", "/alihkan KODE OPD alasan")
ADMIN_ONLY = ("/siaran", "/siaran_status", "/siaran_batal NOMOR")


def make_staff(core: CoreHarness, user: str, role: str, opd: str | None) -> None:
    def do(repo):  # type: ignore[no-untyped-def]
        _ident, person, _ = repo.get_or_create_identity(
            "telegram", user, user, language="id", display_name=f"Petugas {user}"
        )
        repo.set_staff(person.id, role, opd)

    core.repo_call(do)


def wa_command(name: str) -> Inbound:
    """A typed word on WhatsApp, as the adapter's `parse_command` makes it a command."""
    wa = "6281234"
    return Inbound(
        channel="whatsapp", external_id=wa, chat_id=wa, kind="command", command=name, text=name
    )


def menus(outs: list[Outgoing]) -> list[Outgoing]:
    return [o for o in outs if o.kind == KIND_COMMANDS]


def menu_names(out: Outgoing) -> list[str]:
    return [c["command"] for c in out.meta["commands"]]


def help_of(core: CoreHarness, user: str) -> str:
    return texts([o for o in core.text(user, "/bantuan") if o.kind != KIND_COMMANDS])


def test_help_lists_the_commands_of_each_role(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url, officers=True)
    make_staff(core, OFFICER, "officer", "DLH")
    make_staff(core, HEAD, "head", "DLH")
    make_staff(core, ADMIN, "admin", None)

    citizen = help_of(core, CITIZEN)
    assert "/lapor – " in citizen and "/status KODE – " in citizen and "/langganan" in citizen
    assert not any(cmd in citizen for cmd in OFFICER_ONLY + ADMIN_ONLY + ("/statistik",))

    officer = help_of(core, OFFICER)
    assert "Perintah petugas:" in officer and all(cmd in officer for cmd in OFFICER_ONLY)
    assert "/lapor – " in officer  # an officer is a citizen too
    assert "/statistik" not in officer and not any(cmd in officer for cmd in ADMIN_ONLY)

    head = help_of(core, HEAD)
    assert "/statistik" in head and "/hubungkan OPD" in head
    assert not any(cmd in head for cmd in ADMIN_ONLY)

    admin = help_of(core, ADMIN)
    assert "Perintah admin:" in admin and all(cmd in admin for cmd in ADMIN_ONLY + OFFICER_ONLY)


def test_whatsapp_help_names_typed_words_without_the_slash(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url, officers=True)
    out = core.send(wa_command("bantuan"))
    text = texts(out)
    assert "\nlapor – " in text and "\nstatus KODE – " in text
    assert "/lapor" not in text and "/status" not in text
    assert "misalnya: lapor" in text  # and says how commands work there
    # other answers follow the same style, e.g. an unknown command
    out = core.send(wa_command("xyz"))
    assert "Ketik bantuan" in texts(out) and "/bantuan" not in texts(out)
    # Telegram keeps the slash, and URLs are never touched
    assert "/lapor – " in help_of(core, CITIZEN)


def test_in_a_group_help_shows_only_what_works_there(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url, officers=True)
    make_staff(core, OFFICER, "officer", "DLH")
    [reply] = core.send(
        Inbound(
            channel="telegram",
            external_id=OFFICER,
            chat_id="-1001",
            chat_type="group",
            kind="command",
            command="bantuan",
            text="/bantuan",
        )
    )
    assert reply.address == "-1001" and not reply.reply.choices  # no menu buttons in a group
    assert "/ambil KODE" in reply.reply.text and "/lapor" not in reply.reply.text


def test_joining_sets_the_officers_telegram_menu_and_losing_the_role_resets_it(
    db_url: str,
) -> None:
    core = CoreHarness(db_url, officers=True)
    code = core.repo_call(lambda r: create_invite(r, "DLH", "officer", core.clock.now))
    out = core.text(OFFICER, f"/daftar {code}")
    [menu] = menus(out)
    assert menu.channel == "telegram" and menu.address == OFFICER
    assert menu.meta["scope"] == {"type": "chat", "chat_id": OFFICER}
    names = menu_names(menu)
    assert names[:2] == ["lapor", "laporanku"] and {"antrian", "ambil", "selesai"} <= set(names)
    assert "siaran" not in names and "statistik" not in names
    described = dict((c["command"], c["description"]) for c in menu.meta["commands"])
    assert described["ambil"] == "Ambil laporan"  # in the person's language
    # the welcome names the officer's commands, not the citizen's
    welcome = texts([o for o in out if o.kind != KIND_COMMANDS])
    assert "/antrian" in welcome and "/lapor – " not in welcome
    # the role is taken away: the chat's own menu is emptied (back to the default one)
    person_id = core.repo_call(lambda r: r.identity("telegram", OFFICER).person_id)
    core.repo_call(lambda r: r.remove_staff(person_id))
    [reset] = core.repo_call(lambda r: helptext.menu_messages(r, core.svc.i18n, person_id))
    assert reset.kind == KIND_COMMANDS and reset.meta["commands"] == []
    # a citizen's /bantuan writes no menu
    assert menus(core.text(CITIZEN, "/bantuan")) == []


def test_staff_menu_follows_the_language_and_only_goes_to_telegram(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url, officers=True)
    make_staff(core, ADMIN, "admin", None)

    def add_whatsapp(repo):  # type: ignore[no-untyped-def]
        person_id = repo.identity("telegram", ADMIN).person_id
        repo.get_or_create_identity("whatsapp", "628111", "628111", language="id")
        ident = repo.identity("whatsapp", "628111")
        ident.person_id = person_id

    core.repo_call(add_whatsapp)
    core.text(ADMIN, "/bahasa")
    out = core.choose(ADMIN, "lang:en")
    [menu] = menus(out)  # Telegram only: WhatsApp has no menu
    assert menu.channel == "telegram"
    described = dict((c["command"], c["description"]) for c in menu.meta["commands"])
    assert described["siaran"] == "Send an announcement"
    assert {"siaran_status", "siaran_batal", "statistik", "hubungkan"} <= set(described)
    # /bantuan sends the menu again (a menu that went missing comes back)
    assert len(menus(core.text(ADMIN, "/bantuan"))) == 1
