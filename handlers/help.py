"""Which commands a person has, by role: the `/bantuan` text and the Telegram command menu.

    citizen ─ everyone: /lapor /laporanku /status /langganan /berhenti /batal /bahasa /bantuan
    officer ─ officers, OPD heads and admins: /antrian /lihat /ambil /proses /selesai …
    head    ─ OPD heads and admins: /statistik /hubungkan
    admin   ─ admins: /siaran /siaran_status /siaran_batal

Telegram's menu is set per scope (https://core.telegram.org/bots/api#botcommandscope): the
default scope holds the citizen commands, every group chat the queue-group commands (both set
at start by the adapter), and a staff member's private chat (`BotCommandScopeChat`) their own
list. That last one is an outbox message (`KIND_COMMANDS`) written when someone becomes staff
or loses the role (and again at /bantuan or /bahasa, so a menu that went missing comes back);
an empty list resets the chat to the default menu. WhatsApp has no menu: the help text names
the commands as typed words (see `handlers.style`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from handlers.events import KIND_COMMANDS, PRIORITY_REPLY, Outgoing, Reply
from handlers.services import I18nLike
from handlers.style import style
from handlers.text import N_, Gettext
from storage.models import ROLE_ADMIN, ROLE_HEAD, ROLE_OFFICER, Staff
from storage.repo import Repo

CITIZEN, OFFICER, HEAD, ADMIN = "citizen", "officer", "head", "admin"
MENU_CHANNEL = "telegram"  # the one channel with a command menu


@dataclass(frozen=True)
class Command:
    name: str
    about: str  # msgid: what it does (the menu's description)
    args: str = ""  # msgid: what follows the command ("CODE note"), shown in the help text
    role: str = CITIZEN  # who has it
    group: bool = False  # also in the queue groups' menu


COMMANDS: tuple[Command, ...] = (
    Command("lapor", N_("Report a problem")),
    Command("laporanku", N_("My reports and their status")),
    Command("status", N_("One report with its history"), N_("CODE")),
    Command("langganan", N_("Early warnings and announcements")),
    Command("berhenti", N_("Stop warnings and announcements")),
    Command("batal", N_("Cancel what you are doing")),
    Command("bahasa", N_("Change language")),
    Command("bantuan", N_("Help")),
    Command("antrian", N_("Open reports of your OPD"), role=OFFICER, group=True),
    Command("lihat", N_("One report with its whole history"), N_("CODE"), OFFICER, True),
    Command("ambil", N_("Take a report"), N_("CODE"), OFFICER, True),
    Command("proses", N_("In progress (the citizen is told)"), N_("CODE [note]"), OFFICER, True),
    Command("selesai", N_("Resolved, then a photo as proof"), N_("CODE note"), OFFICER, True),
    Command("tolak", N_("Reject with a reason"), N_("CODE reason"), OFFICER, True),
    Command("alihkan", N_("Hand over to another OPD"), N_("CODE OPD reason"), OFFICER, True),
    Command(
        "catatan", N_("Internal note, never shown to the citizen"), N_("CODE text"), OFFICER, True
    ),
    Command("statistik", N_("Statistics"), role=HEAD, group=True),
    Command("hubungkan", N_("Make this group the OPD's queue"), N_("OPD"), HEAD, True),
    Command("siaran", N_("Send an announcement"), role=ADMIN),
    Command("siaran_status", N_("Announcements and warnings: progress"), role=ADMIN),
    Command("siaran_batal", N_("Stop an announcement"), N_("NUMBER"), ADMIN),
)
SECTIONS = (
    (CITIZEN, N_("What I can do:")),
    (OFFICER, N_("Officer commands:")),
    (HEAD, N_("For OPD heads and admins:")),
    (ADMIN, N_("Admin commands:")),
)


def roles_of(staff: Staff | None) -> frozenset[str]:
    """Everyone is a citizen; officers, heads and admins have more (an admin every OPD's)."""
    if staff is None:
        return frozenset({CITIZEN})
    if staff.role == ROLE_ADMIN:
        return frozenset({CITIZEN, OFFICER, HEAD, ADMIN})
    if staff.role == ROLE_HEAD:
        return frozenset({CITIZEN, OFFICER, HEAD})
    if staff.role == ROLE_OFFICER:
        return frozenset({CITIZEN, OFFICER})
    return frozenset({CITIZEN})


def commands_for(roles: Iterable[str], *, group: bool = False) -> list[Command]:
    wanted = set(roles)
    return [c for c in COMMANDS if c.role in wanted and (c.group or not group)]


def help_text(_: Gettext, roles: Iterable[str], channel: str, *, group: bool = False) -> str:
    """The help of a person with these roles, one section per role; in a group only what
    works there. Commands are written with the slash; `Ctx.reply` drops it where commands are
    typed words (WhatsApp), and this text then says so."""
    mine = commands_for(roles, group=group)
    blocks = []
    for role, title in SECTIONS:
        lines = [_line(_, c) for c in mine if c.role == role]
        if lines:
            blocks.append("\n".join([_(title), *lines]))
    if not group and not style(channel).slash_commands:
        blocks.append(_("Type the word at the start of a line, for example: /lapor"))
    if not group:
        blocks.append(_("Tip: just send a photo or your location to start a report."))
    return "\n\n".join(blocks)


def _line(_: Gettext, c: Command) -> str:
    args = f" {_(c.args)}" if c.args else ""
    return f"/{c.name}{args} – {_(c.about)}"


def menu(_: Gettext, roles: Iterable[str], *, group: bool = False) -> list[tuple[str, str]]:
    """(command, description) pairs for Telegram's menu (≤ 100, descriptions ≤ 256)."""
    return [(c.name, _(c.about)[:256]) for c in commands_for(roles, group=group)]


def menu_messages(repo: Repo, i18n: I18nLike, person_id: int) -> list[Outgoing]:
    """The person's own command menu in each of their Telegram private chats, in their
    language: their roles' commands, or (no staff role) back to the default menu."""
    person = repo.person(person_id)
    if person is None:
        return []
    staff = repo.staff(person_id)
    lang = i18n.lang(person.language)
    commands: Sequence[tuple[str, str]] = ()
    if staff is not None:
        commands = menu(lambda m: i18n.gettext(lang, m), roles_of(staff))
    out = []
    for ident in repo.identities_of(person_id):
        if ident.channel != MENU_CHANNEL:
            continue
        out.append(
            Outgoing(
                channel=ident.channel,
                address=ident.address,
                identity_id=ident.id,
                reply=Reply(text=""),
                priority=PRIORITY_REPLY,
                kind=KIND_COMMANDS,
                meta={
                    "lang": lang,
                    "scope": {"type": "chat", "chat_id": ident.address},
                    "commands": [{"command": c, "description": d} for c, d in commands],
                },
            )
        )
    return out
