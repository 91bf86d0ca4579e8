"""Announcements by administrators: `/siaran`, `/siaran_status`, `/siaran_batal ID`.

    /siaran ─► bc.text (text, or a photo with a caption)
            ─► bc.audience: everyone | kecamatan (toggle buttons) | kelurahan (typed names)
                            | circle (a location or "lat,lon", then the radius in km)
            ─► bc.confirm: recipient count + preview ─► Send now | Schedule (bc.when) | Cancel

Only admins (staff role `admin`) may use these commands; anyone else is told so clearly.  The
broadcast row (and its scheduled job) is written in the same transaction as the answer; the
fan-out worker picks it up from there.  The warnings service is `Services.alerts`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers.core import Ctx, Registry
from handlers.events import Choice, MediaRef
from handlers.labels import local_time
from handlers.services import Alerts
from handlers.text import Gettext
from storage.alert_models import BC_DONE, BC_SCHEDULED
from storage.models import ROLE_ADMIN

MIN_TEXT = 5
MAX_TEXT = 3500
MAX_CAPTION = 900  # a photo caption holds 1024 characters, with the header ("📣 …") above
MAX_RADIUS_KM = 50.0
MIN_LEAD = timedelta(minutes=1)


def is_admin(ctx: Ctx) -> bool:
    assert ctx.person.id is not None
    staff = ctx.repo.staff(ctx.person.id)
    return staff is not None and staff.role == ROLE_ADMIN


def _refuse(ctx: Ctx) -> None:
    ctx.reply(ctx.gettext("Sorry, only administrators can send announcements."))


def _alerts(ctx: Ctx) -> Alerts:
    alerts = ctx.svc.alerts
    assert alerts is not None, "checked by /siaran"
    return alerts


def cmd_broadcast(ctx: Ctx) -> None:
    if not is_admin(ctx):
        _refuse(ctx)
        return
    _ = ctx.gettext
    if ctx.svc.alerts is None:
        ctx.reply(_("Announcements are not available right now."))
        return
    ctx.set_state("bc.text", {})
    ctx.reply(
        _(
            "New announcement. Write the text (you may also send one photo with a caption). "
            "Type /batal to stop."
        )
    )


def step_broadcast(ctx: Ctx) -> None:
    if not is_admin(ctx):  # the role was removed meanwhile
        ctx.clear_state()
        _refuse(ctx)
        return
    step, data = ctx.state()
    handler = {
        "bc.text": _step_text,
        "bc.audience": _step_audience,
        "bc.kec": _step_kecamatan,
        "bc.kel": _step_kelurahan,
        "bc.circle": _step_circle,
        "bc.radius": _step_radius,
        "bc.confirm": _step_confirm,
        "bc.when": _step_when,
    }.get(step or "")
    if handler is None:
        ctx.clear_state()
        return
    handler(ctx, data)


def _audience_buttons(_: Gettext) -> tuple[Choice, ...]:
    return (
        Choice(
            "bc:all",
            _("👥 Everyone who wants them"),
            _("Everyone who agreed to receive the city's announcements"),
        ),
        Choice("bc:kec", _("🏙️ Kecamatan")),
        Choice("bc:kel", _("🏘️ Kelurahan")),
        Choice("bc:circle", _("📍 Around a point")),
    )


def _step_text(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "photo":
        if ev.photo is None:
            ctx.reply(_("I could not use that photo. Please send it again, or write the text."))
            return
        data["photo"] = {
            "sha256": ev.photo.sha256,
            "mime": ev.photo.mime,
            "size": ev.photo.size,
            "path": ev.photo.path,
            "channel_file_id": ev.photo.channel_file_id,
        }
        if not (ev.text or "").strip():
            ctx.set_state("bc.text", data)
            ctx.reply(_("Photo saved. Now write the text of the announcement."))
            return
    text = (ev.text or "").strip()
    if ev.kind not in ("text", "photo") or len(text) < MIN_TEXT:
        ctx.reply(
            _("Please write the announcement text (at least {n} characters).").format(n=MIN_TEXT)
        )
        return
    if len(text) > MAX_TEXT or (data.get("photo") and len(text) > MAX_CAPTION):
        limit = MAX_CAPTION if data.get("photo") else MAX_TEXT
        ctx.reply(_("The text is too long. Please keep it under {n} characters.").format(n=limit))
        return
    data["text"] = text
    ctx.set_state("bc.audience", data)
    ctx.reply(_("Who should receive it?"), _audience_buttons(_))


def _step_audience(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    choice = ctx.event.choice if ctx.event.kind == "choice" else None
    if choice == "bc:all":
        data["audience"] = {"type": "everyone"}
        _confirm(ctx, data)
    elif choice == "bc:kec":
        data["kec"] = []
        ctx.set_state("bc.kec", data)
        ctx.reply(_("Choose one or more kecamatan, then press Done."), _kec_buttons(ctx, data))
    elif choice == "bc:kel":
        ctx.set_state("bc.kel", data)
        ctx.reply(_("Type the kelurahan names, separated by commas."))
    elif choice == "bc:circle":
        ctx.set_state("bc.circle", data)
        ctx.reply(
            _("Share the centre point, or type it as “lat, lon”."),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
    else:
        ctx.reply(_("Please choose with the buttons."), _audience_buttons(_))


def _kec_buttons(ctx: Ctx, data: dict[str, Any]) -> list[Choice]:
    chosen = set(data.get("kec") or [])
    out = [
        Choice(f"bc:k:{k.code}", ("✔️ " if k.code in chosen else "") + k.name)
        for k in ctx.svc.city.kecamatan
    ]
    out.append(Choice("bc:ok", ctx.gettext("✅ Done")))
    return out


def _step_kecamatan(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    choice = ctx.event.choice or ""
    if choice.startswith("bc:k:") and ctx.svc.city.kecamatan_by_code(choice[5:]):
        chosen = list(data.get("kec") or [])
        code = choice[5:]
        data["kec"] = [c for c in chosen if c != code] if code in chosen else [*chosen, code]
        ctx.set_state("bc.kec", data)
        ctx.reply(_("Selected: {n}. Press Done when ready.").format(n=len(data["kec"])),
                  _kec_buttons(ctx, data))  # fmt: skip
        return
    if choice == "bc:ok" and data.get("kec"):
        data["audience"] = {"type": "kecamatan", "codes": sorted(data.pop("kec"))}
        _confirm(ctx, data)
        return
    ctx.reply(_("Choose at least one kecamatan, then press Done."), _kec_buttons(ctx, data))


def _step_kelurahan(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    if ctx.event.kind != "text" or not ctx.event.text:
        ctx.reply(_("Type the kelurahan names, separated by commas."))
        return
    codes: list[str] = []
    unknown: list[str] = []
    for part in re.split(r"[,;\n]+", ctx.event.text)[:50]:
        name = part.strip()
        if not name:
            continue
        if ctx.svc.city.kelurahan_by_code(name):
            codes.append(name)
            continue
        hits = [m for m in ctx.svc.areas.match_place(name) if m.kind == "kelurahan"]
        if hits and hits[0].kode_kel:
            codes.append(hits[0].kode_kel)
        else:
            unknown.append(name)
    if unknown or not codes:
        ctx.reply(
            _("I could not find: {names}. Please type the kelurahan names again.").format(
                names=", ".join(unknown) or "-"
            )
        )
        return
    data["audience"] = {"type": "kelurahan", "codes": sorted(set(codes))}
    _confirm(ctx, data)


def _step_circle(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    point = None
    if ev.kind == "location" and ev.lat is not None and ev.lon is not None:
        point = (ev.lat, ev.lon)
    elif ev.kind == "text" and ev.text:
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*", ev.text)
        if m:
            point = (float(m.group(1)), float(m.group(2)))
    if point is None or not ctx.svc.city.in_bbox(*point):
        ctx.reply(
            _("Please share a point in {city}, or type it as “lat, lon”.").format(
                city=ctx.svc.city.city.name
            ),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
        return
    data["center"] = [round(point[0], 6), round(point[1], 6)]
    ctx.set_state("bc.radius", data)
    ctx.reply(_("Radius in km (for example 2)?"), remove_keyboard=True)


def _step_radius(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    raw = (ctx.event.text or "").strip().replace(",", ".").removesuffix("km").strip()
    try:
        radius = float(raw)
    except ValueError:
        radius = -1.0
    if not 0 < radius <= MAX_RADIUS_KM:
        ctx.reply(
            _("Please type a radius between 0.1 and {max} km.").format(max=f"{MAX_RADIUS_KM:g}")
        )
        return
    lat, lon = data.pop("center")
    data["audience"] = {"type": "circle", "lat": lat, "lon": lon, "radius_km": radius}
    _confirm(ctx, data)


def _confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    alerts = _alerts(ctx)
    audience = alerts.parse_audience(data["audience"])
    n = alerts.count_recipients(ctx.alerts_repo, audience)
    data["count"] = n
    ctx.set_state("bc.confirm", data)
    photo = MediaRef(**data["photo"]) if data.get("photo") else None
    ctx.reply(_("Preview:"))
    ctx.reply(data["text"], photo=photo)
    ctx.reply(
        _("To: {audience}\nRecipients now: {n}\n\nSend it?").format(
            audience=alerts.describe_audience(audience, _), n=n
        ),
        (
            Choice("bc:send", _("📣 Send now")),
            Choice("bc:later", _("🕒 Schedule")),
            Choice("bc:cancel", _("❌ Cancel")),
        ),
    )


def _create(ctx: Ctx, data: dict[str, Any], when: datetime | None) -> int:
    alerts = _alerts(ctx)
    audience = alerts.parse_audience(data["audience"])
    photo = MediaRef(**data["photo"]) if data.get("photo") else None
    bc = alerts.new_broadcast(
        ctx.alerts_repo,
        source="admin",
        audience=audience,
        texts={"*": data["text"]},
        photo=photo,
        created_by=ctx.person.id,
        scheduled_at=when,
    )
    assert bc.id is not None
    return bc.id


def _step_confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    choice = ctx.event.choice if ctx.event.kind == "choice" else None
    if choice == "bc:send":
        bid = _create(ctx, data, None)
        ctx.clear_state()
        msg = _("📣 Announcement #{id} is being sent to {n} recipients. Follow: /siaran_status")
        ctx.reply(msg.format(id=bid, n=data.get("count", 0)))
    elif choice == "bc:later":
        ctx.set_state("bc.when", data)
        ctx.reply(
            _("When? Type the date and time ({tz}), for example {example}.").format(
                tz=_tz_label(ctx), example=example_time(ctx)
            )
        )
    elif choice == "bc:cancel":
        ctx.clear_state()
        ctx.reply(_("Cancelled. Nothing was sent."))
    else:
        ctx.reply(
            _("Please press Send now, Schedule or Cancel."),
            (
                Choice("bc:send", _("📣 Send now")),
                Choice("bc:later", _("🕒 Schedule")),
                Choice("bc:cancel", _("❌ Cancel")),
            ),
        )


def _tz_label(ctx: Ctx) -> str:
    now = ctx.svc.clock().astimezone(ZoneInfo(ctx.svc.city.city.timezone))
    return now.tzname() or ctx.svc.city.city.timezone


def example_time(ctx: Ctx) -> str:
    """Tomorrow 07:00 local time, as it is typed ("2026-12-03 07:00")."""
    local = ctx.svc.clock().astimezone(ZoneInfo(ctx.svc.city.city.timezone))
    return f"{local.date() + timedelta(days=1):%Y-%m-%d} 07:00"


def parse_when(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """``2026-12-01 07:00``, ``01-12-2026 07:00`` or ``07:00`` (next occurrence) → aware UTC."""
    text = text.strip().replace("T", " ").replace(".", ":")
    local_now = now.astimezone(tz)
    for fmt in ("%Y-%m-%d %H:%M", "%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz).astimezone(now.tzinfo)
        except ValueError:
            pass
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
        t = local_now.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
        if t <= local_now:
            t += timedelta(days=1)
        return t.astimezone(now.tzinfo)
    return None


def _step_when(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    tz = ZoneInfo(ctx.svc.city.city.timezone)
    now = ctx.svc.clock()
    when = parse_when(ctx.event.text or "", now, tz) if ctx.event.kind == "text" else None
    if when is None or when < now + MIN_LEAD:
        ctx.reply(
            _("Please type a time at least one minute from now, for example {example}.").format(
                example=example_time(ctx)
            )
        )
        return
    bid = _create(ctx, data, when)
    ctx.clear_state()
    ctx.reply(
        _(
            "🕒 Announcement #{id} is scheduled for {time}. Cancel it with /siaran_batal {id}."
        ).format(id=bid, time=local_time(ctx, when, ctx.lang))
    )


def cmd_status(ctx: Ctx) -> None:
    if not is_admin(ctx):
        _refuse(ctx)
        return
    _ = ctx.gettext
    arepo = ctx.alerts_repo
    rows = arepo.recent_broadcasts(5)
    if not rows:
        ctx.reply(_("No broadcasts yet."))
        return
    alerts = ctx.svc.alerts
    lines = [_("Latest broadcasts:")]
    for bc in rows:
        assert bc.id is not None
        counts = arepo.broadcast_counts(bc.id)
        pending = counts.get("pending", 0) + counts.get("sending", 0)
        running = alerts is not None and bc.state != BC_DONE
        rate = alerts.sent_rate(arepo, bc.id) if alerts is not None and running else 0.0
        line = _(
            "#{id} {kind} · {state} · sent {sent} · failed {failed} · pending {pending} · {rate}/s"
        ).format(
            id=bc.id,
            kind=_("warning") if bc.kind == "warning" else _("announcement"),
            state=bc.state,
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0) + counts.get("cancelled", 0),
            pending=pending,
            rate=f"{rate:.1f}",
        )
        if bc.state == BC_SCHEDULED and bc.scheduled_at is not None:
            line += " · " + local_time(ctx, bc.scheduled_at, ctx.lang)
        lines.append(line)
    ctx.reply("\n".join(lines))


def cmd_cancel_broadcast(ctx: Ctx) -> None:
    if not is_admin(ctx):
        _refuse(ctx)
        return
    _ = ctx.gettext
    raw = (ctx.event.args or "").strip().lstrip("#")
    if not (raw.isdigit() and len(raw) <= 9):
        ctx.reply(_("Write the broadcast number, for example: /siaran_batal 12"))
        return
    n = ctx.alerts_repo.cancel_broadcast(int(raw))
    if n is None:
        ctx.reply(_("Broadcast #{id} was not found or has already ended.").format(id=raw))
        return
    ctx.reply(_("Broadcast #{id} stopped; {n} queued messages cancelled.").format(id=raw, n=n))


def register(reg: Registry) -> None:
    reg.commands.update(
        {
            "siaran": cmd_broadcast,
            "siaran_status": cmd_status,
            "siaran_batal": cmd_cancel_broadcast,
        }
    )
    reg.command_aliases.update({"broadcast": "siaran"})
    reg.steps["bc"] = step_broadcast
