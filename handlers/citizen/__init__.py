"""The citizen's conversation: file a report, check reports, language, help.

`flow.py` is the report flow, `places.py` where a report is, `mine.py` the citizen's own
reports; this module has the entry points (start, help, menu, language, cancel, idle) and
registers them all.
"""

from __future__ import annotations

from handlers import help as helptext
from handlers.citizen import flow, mine, places
from handlers.core import Ctx, Registry
from handlers.events import Choice
from handlers.labels import main_menu, place_text
from handlers.text import visible


def cmd_start(ctx: Ctx) -> None:
    _ = ctx.gettext
    city = ctx.svc.city.city.name
    ctx.clear_state()
    ctx.reply(
        _(
            "Welcome to Lapor Warga {city}! 👋\n\n"
            "Here you can report problems in your neighbourhood — damaged roads, rubbish, "
            "street lights, flooding and more — straight to the responsible agency (OPD). "
            "You will get a ticket number and a message every time its status changes."
        ).format(city=city),
        main_menu(_),
    )


def cmd_help(ctx: Ctx) -> None:
    """The commands of the person's roles (in a group: those that work there). Staff also get
    their Telegram menu again, in case it went missing."""
    _ = ctx.gettext
    assert ctx.person.id is not None
    roles = helptext.roles_of(ctx.repo.staff(ctx.person.id))
    group = ctx.event.chat_type == "group"
    text = helptext.help_text(_, roles, ctx.event.channel, group=group)
    if group:
        ctx.reply(text)
        return
    ctx.reply(text, main_menu(_))
    if roles != {helptext.CITIZEN}:
        ctx.out += helptext.menu_messages(ctx.repo, ctx.svc.i18n, ctx.person.id)


def cmd_cancel(ctx: Ctx) -> None:
    _ = ctx.gettext
    step, _data = ctx.state()
    ctx.clear_state()
    if step:
        ctx.reply(_("Cancelled. Nothing was sent."), main_menu(_), remove_keyboard=True)
    else:
        ctx.reply(_("There is nothing to cancel."), main_menu(_))


def cmd_language(ctx: Ctx) -> None:
    _ = ctx.gettext
    ctx.reply(
        _("Choose your language:"),
        (Choice("lang:id", "🇮🇩 Bahasa Indonesia"), Choice("lang:en", "🇬🇧 English")),
    )


def on_language(ctx: Ctx) -> None:
    code = (ctx.event.choice or "").split(":", 1)[1] if ":" in (ctx.event.choice or "") else ""
    if code not in ("id", "en"):
        ctx.reply(ctx.gettext("That button is no longer active. Type /lapor to start a report."))
        return
    ctx.repo.set_language(ctx.person, code)
    ctx.reply(ctx.gettext("Language set to English."))
    assert ctx.person.id is not None
    if ctx.repo.staff(ctx.person.id) is not None:  # their menu, in the new language
        ctx.out += helptext.menu_messages(ctx.repo, ctx.svc.i18n, ctx.person.id)


def on_menu(ctx: Ctx) -> None:
    action = (ctx.event.choice or "").partition(":")[2]
    {"lapor": flow.cmd_report, "laporanku": mine.cmd_my_reports, "bantuan": cmd_help}.get(
        action, cmd_help
    )(ctx)


def on_idle(ctx: Ctx) -> None:
    """No conversation running: a photo or a location starts a report with it filled in."""
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "photo":
        data = flow.new_draft()
        if not flow.add_photo(ctx, data):
            return
        ctx.reply(_("Photo received. Let's make a report of it."))
        flow.ask_next(ctx, data)
        return
    if ev.kind == "location":
        data = flow.new_draft()
        if places.set_point(ctx, data, ev.lat, ev.lon, source="gps"):
            ctx.reply(
                _("Location received: {place}. Let's make a report of it.").format(
                    place=place_text(_, data)
                )
            )
            flow.ask_next(ctx, data)
        return
    if ev.kind == "text" and ev.text and ctx.svc.triage is not None:
        text = visible(ev.text)
        if len(text) >= 15:
            data = flow.new_draft()
            data["description"] = text[: flow.MAX_DESC]
            flow.ask_next(ctx, data)
            return
    ctx.reply(_("Hello! To report a problem, type /lapor or press the button below."), main_menu(_))


def register(reg: Registry) -> None:
    reg.commands.update(
        {
            "start": cmd_start,
            "lapor": flow.cmd_report,
            "laporanku": mine.cmd_my_reports,
            "status": mine.cmd_status,
            "batal": cmd_cancel,
            "bahasa": cmd_language,
        }
    )
    reg.command("bantuan", group=True)(cmd_help)
    reg.command_aliases.update(
        {
            "help": "bantuan",
            "report": "lapor",
            "cancel": "batal",
            "language": "bahasa",
            "myreports": "laporanku",
        }
    )
    reg.steps["report"] = flow.step_report
    reg.choices["menu"] = on_menu
    reg.choices["lang"] = on_language
    reg.idle = on_idle
