"""Citizens choose where they want disaster warnings for.

    /langganan ─► what you have + kecamatan buttons ─► kelurahan buttons ─► saved (pick more)
                  │ or type a kelurahan name (fuzzy)                         └─ ✅ Done
                  └ or share a home location (→ its kelurahan, and the point for radius alerts)
                  └ and, apart from the warnings, a yes to the city's announcements (📣)
    /berhenti  ─► every subscription, the home point and the yes to announcements are forgotten

Warnings and announcements are two consents: warnings go to who chose an area for them,
announcements only to who said yes to them (bot/alerts/broadcasts.py `consented`).

After a citizen's first report they are asked once whether they want warnings for the
report's kelurahan (`offer_after_report`, hooked into the report flow by the composition root).
Buttons (`sub:…`) work at any step, so an old keyboard still does what it says.
"""

from __future__ import annotations

from handlers.core import Ctx, Registry
from handlers.events import Choice
from handlers.text import Gettext
from storage.alert_repo import AlertRepo
from storage.models import Report

STEP = "sub.pick"


def _arepo(ctx: Ctx) -> AlertRepo:
    return ctx.alerts_repo


def _pid(ctx: Ctx) -> int:
    assert ctx.person.id is not None
    return ctx.person.id


def _kel_name(ctx: Ctx, code: str) -> str:
    kel = ctx.svc.city.kelurahan_by_code(code)
    return kel.name if kel is not None else code


def summary(ctx: Ctx) -> str:
    """What the person is subscribed to, in one short text."""
    _ = ctx.gettext
    arepo = _arepo(ctx)
    codes = [s.kode_kel for s in arepo.subscriptions_of(_pid(ctx))]
    sub = arepo.subscriber(_pid(ctx))
    lines = []
    if codes:
        lines.append(_("You receive warnings for:"))
        lines += [f"• Kel. {_kel_name(ctx, c)}" for c in codes]
    if sub is not None and sub.home_lat is not None:
        lines.append(_("📍 Home location saved (for warnings around it)."))
    if not lines:
        lines.append(_("You do not receive warnings yet."))
    if wants_announcements(ctx):
        lines.append(_("📣 You also receive the city's announcements."))
    else:
        lines.append(_("📣 You do not receive the city's announcements."))
    return "\n".join(lines)


def wants_announcements(ctx: Ctx) -> bool:
    sub = _arepo(ctx).subscriber(_pid(ctx))
    return sub is not None and sub.announcements_at is not None


def kecamatan_choices(ctx: Ctx, _: Gettext) -> list[Choice]:
    out = [Choice(f"sub:kec:{k.code}", k.name) for k in ctx.svc.city.kecamatan]
    if wants_announcements(ctx):
        out.append(Choice("sub:ann:off", _("🔕 No announcements")))
    else:
        out.append(Choice("sub:ann:on", _("📣 Announcements too")))
    out.append(Choice("sub:done", _("✅ Done")))
    return out


def cmd_subscribe(ctx: Ctx) -> None:
    _ = ctx.gettext
    ctx.set_state(STEP, {})
    ctx.reply(
        summary(ctx)
        + "\n\n"
        + _(
            "Early warnings (floods, earthquakes): choose your kecamatan below, or type the "
            "name of your kelurahan. You can choose several.\n"
            "Announcements of the city government are separate: press “📣 Announcements too” "
            "to get them as well."
        ),
        kecamatan_choices(ctx, _),
    )
    ctx.reply(
        _("Or share your home location to get warnings for the area around it."),
        ask_location=True,
        location_label=_("📍 Share home location"),
    )


def cmd_stop(ctx: Ctx) -> None:
    _ = ctx.gettext
    n = _arepo(ctx).unsubscribe_all(_pid(ctx))
    step, _data = ctx.state()
    if step == STEP:
        ctx.clear_state()
    if n:
        ctx.reply(
            _(
                "Done: you will no longer receive warnings or announcements. "
                "Type /langganan to subscribe again."
            ),
            remove_keyboard=True,
        )
    else:
        ctx.reply(_("You do not receive warnings. Type /langganan to subscribe."))


def _saved(ctx: Ctx, code: str, *, new: bool) -> None:
    _ = ctx.gettext
    text = (
        _("✅ Saved. You will receive warnings for Kel. {kelurahan}.")
        if new
        else _("You already receive warnings for Kel. {kelurahan}.")
    ).format(kelurahan=_kel_name(ctx, code))
    ctx.reply(
        text + "\n" + _("Choose another one, or press Done."),
        kecamatan_choices(ctx, _),
    )


def on_choice(ctx: Ctx) -> None:
    """Buttons `sub:kec:CODE`, `sub:kel:CODE`, `sub:offer:CODE`, `sub:no`, `sub:done`."""
    _ = ctx.gettext
    parts = (ctx.event.choice or "").split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    code = parts[2] if len(parts) > 2 else ""
    city = ctx.svc.city
    if action == "kec" and city.kecamatan_by_code(code) is not None:
        kels = [Choice(f"sub:kel:{k.code}", k.name) for k in city.kelurahan_in(code)]
        kels.append(Choice("sub:back", _("⬅️ Back")))
        kec = city.kecamatan_by_code(code)
        ctx.reply(_("Kec. {kecamatan}: choose your kelurahan.").format(kecamatan=kec.name), kels)
        return
    if action in ("kel", "offer") and city.kelurahan_by_code(code) is not None:
        new = _arepo(ctx).subscribe(_pid(ctx), code, "pick" if action == "kel" else "report")
        if action == "offer":
            ctx.reply(
                _(
                    "✅ Thank you. You will receive warnings for Kel. {kelurahan}. "
                    "Type /langganan to change this, /berhenti to stop."
                ).format(kelurahan=_kel_name(ctx, code))
            )
            return
        _saved(ctx, code, new=new)
        return
    if action == "ann" and code in ("on", "off"):
        _arepo(ctx).set_announcements(_pid(ctx), code == "on")
        text = (
            _("✅ You will receive the city's announcements. Early warnings stay as they are.")
            if code == "on"
            else _("Done: no more announcements. Early warnings stay as they are.")
        )
        ctx.reply(text, kecamatan_choices(ctx, _))
        return
    if action == "back":
        ctx.reply(_("Choose your kecamatan:"), kecamatan_choices(ctx, _))
        return
    if action == "no":
        ctx.reply(_("All right. You can subscribe any time with /langganan."))
        return
    if action == "done":
        step, _data = ctx.state()
        if step == STEP:
            ctx.clear_state()
        ctx.reply(
            summary(ctx) + "\n\n" + _("Type /berhenti to stop receiving warnings."),
            remove_keyboard=True,
        )
        return
    ctx.reply(_("That button is no longer active. Type /langganan to start again."))


def step_subscription(ctx: Ctx) -> None:
    """The person is choosing: a location sets the home point, text is a kelurahan name."""
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "location" and ev.lat is not None and ev.lon is not None:
        hit = ctx.svc.areas.locate(ev.lat, ev.lon)
        if hit is None:
            ctx.reply(
                _("That location is outside {city}. Please share a location in {city}.").format(
                    city=ctx.svc.city.city.name
                ),
                ask_location=True,
                location_label=_("📍 Share home location"),
            )
            return
        arepo = _arepo(ctx)
        arepo.set_home(_pid(ctx), round(ev.lat, 6), round(ev.lon, 6), hit.kode_kel)
        arepo.subscribe(_pid(ctx), hit.kode_kel, "home")
        ctx.clear_state()
        ctx.reply(
            _(
                "✅ Home location saved: Kel. {kelurahan}, Kec. {kecamatan}. You will receive "
                "warnings for it. Type /berhenti to stop."
            ).format(kelurahan=hit.nama_kel, kecamatan=hit.nama_kec),
            remove_keyboard=True,
        )
        return
    if ev.kind == "text" and ev.text and len(ev.text.strip()) >= 3:
        _by_name(ctx, ev.text.strip()[:100])
        return
    ctx.reply(
        _("Please choose with the buttons, type a kelurahan name, or share your location."),
        kecamatan_choices(ctx, _),
    )


def _by_name(ctx: Ctx, text: str) -> None:
    _ = ctx.gettext
    city = ctx.svc.city
    for m in ctx.svc.areas.match_place(text):
        if m.kode_kel:
            new = _arepo(ctx).subscribe(_pid(ctx), m.kode_kel, "pick")
            _saved(ctx, m.kode_kel, new=new)
            return
        if m.kind == "kecamatan":
            kels = [Choice(f"sub:kel:{k.code}", k.name) for k in city.kelurahan_in(m.code)]
            kels.append(Choice("sub:back", _("⬅️ Back")))
            ctx.reply(_("Kec. {kecamatan}: choose your kelurahan.").format(kecamatan=m.name), kels)
            return
    ctx.reply(
        _("Sorry, I could not find “{text}”. Please choose with the buttons.").format(
            text=text[:60]
        ),
        kecamatan_choices(ctx, _),
    )


def offer_after_report(ctx: Ctx, report: Report) -> None:
    """After the first report: ask once whether they want warnings for its kelurahan."""
    if not report.kode_kel or ctx.event.chat_type != "private":
        return
    pid = _pid(ctx)
    if not _arepo(ctx).offer_after_first_report(pid, report.kode_kel):
        return
    _ = ctx.gettext
    ctx.reply(
        _(
            "One more question: would you like to receive early warnings (floods, "
            "earthquakes) for Kel. {kelurahan}?"
        ).format(kelurahan=_kel_name(ctx, report.kode_kel)),
        (
            Choice(f"sub:offer:{report.kode_kel}", _("✅ Yes, please")),
            Choice("sub:no", _("No, thanks")),
        ),
    )


def register(reg: Registry) -> None:
    reg.commands.update({"langganan": cmd_subscribe, "berhenti": cmd_stop})
    reg.command_aliases.update({"subscribe": "langganan", "unsubscribe": "berhenti"})
    reg.steps["sub"] = step_subscription
    reg.choices["sub"] = on_choice
