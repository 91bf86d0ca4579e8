"""The citizen's conversation: file a report, check reports, language, help.

Flow of `/lapor` (step names are stored in the database)::

    report.category -> report.description -> report.location -> report.photo -> report.review
                                              |  typed place      (<= 3 photos     Kirim -> ticket
                                              v                  or "Lewati")  Ubah -> report.edit
                                    report.place_confirm                           Batal -> cleared
    report.edit: pick a field; it is asked again, then the review card comes back.

Whatever is already in the draft is skipped (a photo or location sent outside a report starts
one with it filled in). Any step: /batal leaves, unknown input gets that step's hint.
"""

from __future__ import annotations

from typing import Any

from babel.dates import format_datetime

from bot.i18n import N_
from handlers.core import Ctx, Gettext, Registry, Services
from handlers.events import Choice, Inbound, MediaRef, Reply
from storage.models import STATUS_NEW, Photo, Report, ReportEvent
from storage.work_repo import WorkRepo

MIN_DESC = 5
MAX_DESC = 2000
MAX_PHOTOS = 3
FIELDS = ("category", "description", "location", "photos")


# --- labels ---------------------------------------------------------------------------------
def status_label(_: Gettext, status: str) -> str:
    labels = {
        "baru": _("New"),
        "diproses": _("In progress"),
        "selesai": _("Resolved"),
        "ditolak": _("Rejected"),
    }
    return labels.get(status, status)


def category_label(svc_city: Any, key: str, lang: str) -> str:
    cat = svc_city.category(key)
    if cat is None:
        return key
    label = cat.label_id if lang == "id" else cat.label_en
    return f"{cat.emoji} {label}"


def opd_label(svc_city: Any, code: str) -> str:
    opd = svc_city.opd(code)
    return opd.short if opd is not None else code


def local_time(ctx_or_svc: Any, dt: Any, lang: str) -> str:
    svc = getattr(ctx_or_svc, "svc", ctx_or_svc)
    tz = svc.city.city.timezone
    return str(format_datetime(dt, "d MMM yyyy HH:mm", tzinfo=tz, locale=lang))


def place_text(_: Gettext, data: dict[str, Any]) -> str:
    if data.get("nama_kel"):
        return _("Kel. {kelurahan}, Kec. {kecamatan}").format(
            kelurahan=data["nama_kel"], kecamatan=data.get("nama_kec") or "-"
        )
    return str(data.get("place_text") or "-")


# --- entry points -----------------------------------------------------------------------------
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


def main_menu(_: Gettext) -> tuple[Choice, ...]:
    return (
        Choice("menu:lapor", _("📝 New report")),
        Choice("menu:laporanku", _("📋 My reports")),
        Choice("menu:bantuan", _("❓ Help")),
    )


def cmd_help(ctx: Ctx) -> None:
    _ = ctx.gettext
    ctx.reply(
        _(
            "What I can do:\n"
            "/lapor – report a problem\n"
            "/laporanku – your reports and their status\n"
            "/status CODE – one report with its history\n"
            "/batal – cancel what you are doing\n"
            "/bahasa – change language\n"
            "/bantuan – this help\n\n"
            "Tip: just send a photo or your location to start a report."
        ),
        main_menu(_),
    )


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


def on_menu(ctx: Ctx) -> None:
    action = (ctx.event.choice or "").partition(":")[2]
    {"lapor": cmd_report, "laporanku": cmd_my_reports, "bantuan": cmd_help}.get(action, cmd_help)(
        ctx
    )


def cmd_report(ctx: Ctx) -> None:
    ctx.clear_state()
    ask_next(ctx, new_draft())


def new_draft() -> dict[str, Any]:
    return {"photos": [], "photos_done": False}


def on_idle(ctx: Ctx) -> None:
    """No conversation running: a photo or a location starts a report with it filled in."""
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "photo":
        data = new_draft()
        if not add_photo(ctx, data):
            return
        ctx.reply(_("Photo received. Let's make a report of it."))
        ask_next(ctx, data)
        return
    if ev.kind == "location":
        data = new_draft()
        if set_point(ctx, data, ev.lat, ev.lon, source="gps"):
            ctx.reply(
                _("Location received: {place}. Let's make a report of it.").format(
                    place=place_text(_, data)
                )
            )
            ask_next(ctx, data)
        return
    if ev.kind == "text" and ev.text and ctx.svc.triage is not None:
        text = ev.text.strip()
        if len(text) >= 15:
            data = new_draft()
            data["description"] = text[:MAX_DESC]
            ask_next(ctx, data)
            return
    ctx.reply(_("Hello! To report a problem, type /lapor or press the button below."), main_menu(_))


# --- the report steps -------------------------------------------------------------------------
def ask_next(ctx: Ctx, data: dict[str, Any]) -> None:
    """Ask for the first thing the draft lacks; with nothing missing, show the review card."""
    _ = ctx.gettext
    if not data.get("category"):
        ctx.set_state("report.category", data)
        ctx.reply(*category_prompt(ctx, data))
    elif not data.get("description"):
        ctx.set_state("report.description", data)
        ctx.reply(
            _("Describe the problem in a few sentences (at least {min} characters).").format(
                min=MIN_DESC
            )
        )
    elif data.get("lat") is None and not data.get("kode_kel"):
        ctx.set_state("report.location", data)
        ctx.reply(
            _(
                "Where is it? Press “📍 Share location” below, or type an address, "
                "kelurahan or landmark."
            ),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
    elif not data.get("photos_done") and len(data.get("photos") or []) < MAX_PHOTOS:
        ctx.set_state("report.photo", data)
        n = len(data.get("photos") or [])
        if n == 0:
            ctx.reply(
                _("Send a photo of the problem (up to {max}), or press Skip.").format(
                    max=MAX_PHOTOS
                ),
                (Choice("ph:done", _("⏭️ Skip")),),
                remove_keyboard=True,
            )
        else:
            ctx.reply(
                _("Photo {n} of {max} saved. Send another one, or press Continue.").format(
                    n=n, max=MAX_PHOTOS
                ),
                (Choice("ph:done", _("➡️ Continue")),),
            )
    else:
        ctx.set_state("report.review", data)
        ctx.reply(*review_card(ctx, data))


def category_prompt(ctx: Ctx, data: dict[str, Any]) -> tuple[str, tuple[Choice, ...]]:
    _ = ctx.gettext
    cats = list(ctx.svc.city.categories)
    text = _("What is the problem about? Choose a category:")
    suggested = None
    if data.get("description") and ctx.svc.triage is not None:
        best = ctx.svc.triage.best(data["description"])
        if best is not None and ctx.svc.city.category(best.category) is not None:
            suggested = best.category
    if suggested:
        cats.sort(key=lambda c: c.key != suggested)
        text = _("It looks like “{category}”. Is that right? Press it, or choose another:").format(
            category=category_label(ctx.svc.city, suggested, ctx.lang)
        )
    choices = tuple(
        Choice(f"cat:{c.key}", category_label(ctx.svc.city, c.key, ctx.lang)) for c in cats
    )
    return text, choices


def step_report(ctx: Ctx) -> None:
    step, data = ctx.state()
    ev = ctx.event
    _ = ctx.gettext
    if not data:
        data = new_draft()
    # A photo at any step of the report is kept (up to the limit).
    if ev.kind == "photo" and step not in ("report.photo",):
        if add_photo(ctx, data):
            ctx.reply(_("Photo saved."))
            ask_next(ctx, data)
        return
    handler = {
        "report.category": _step_category,
        "report.description": _step_description,
        "report.location": _step_location,
        "report.place_confirm": _step_place_confirm,
        "report.photo": _step_photo,
        "report.review": _step_review,
        "report.edit": _step_edit,
    }.get(step or "")
    if handler is None:
        ctx.clear_state()
        cmd_report(ctx)
        return
    handler(ctx, data)


def _step_category(ctx: Ctx, data: dict[str, Any]) -> None:
    ev = ctx.event
    if ev.kind == "choice" and (ev.choice or "").startswith("cat:"):
        key = ev.choice.split(":", 1)[1]  # type: ignore[union-attr]
        if ctx.svc.city.category(key) is not None:
            data["category"] = key
            ask_next(ctx, data)
            return
    _text, choices = category_prompt(ctx, data)
    ctx.reply(ctx.gettext("Please choose one of the categories with the buttons."), choices)


def _step_description(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind != "text" or not ev.text:
        ctx.reply(_("Please describe the problem in words."))
        return
    text = ev.text.strip()
    if len(text) < MIN_DESC:
        ctx.reply(
            _("That is a bit short. Please write at least {min} characters.").format(min=MIN_DESC)
        )
        return
    if len(text) > MAX_DESC:
        ctx.reply(
            _("That is too long ({n} characters). Please keep it under {max}.").format(
                n=len(text), max=MAX_DESC
            )
        )
        return
    data["description"] = text
    ask_next(ctx, data)


def _step_location(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "location":
        if set_point(ctx, data, ev.lat, ev.lon, source="gps"):
            ask_next(ctx, data)
        return
    if ev.kind == "text" and ev.text:
        resolve_place(ctx, data, ev.text.strip())
        return
    ctx.reply(
        _("Please press “📍 Share location”, or type the address or kelurahan name."),
        ask_location=True,
        location_label=_("📍 Share location"),
    )


def place_query(svc: Services, text: str) -> str:
    """What the geocoder is asked for a typed place."""
    return f"{text[:300]}, {svc.city.city.name}"


def geocoder_lookups(
    svc: Services, step: str | None, ev: Inbound
) -> list[tuple[str, tuple[Any, ...]]]:
    """The geocoder calls handling `ev` at `step` will make, as (method name, arguments).

    The inbox worker makes them before the update's transaction, so the answers are in the
    geocoder's cache when the handler asks: a slow or rate-limited geocoder (Nominatim allows
    1 request/s) then never holds the database.
    """
    if svc.geocoder is None or step not in (None, "report.location"):
        return []
    if ev.kind == "location" and ev.lat is not None and ev.lon is not None:
        if svc.areas.locate(ev.lat, ev.lon) is not None:
            return [("reverse", (ev.lat, ev.lon))]
    if step == "report.location" and ev.kind == "text" and ev.text:
        text = ev.text.strip()[:300]
        if len(text) >= 3 and not svc.areas.match_place(text):
            return [("geocode", (place_query(svc, text),))]
    return []


def resolve_place(ctx: Ctx, data: dict[str, Any], text: str) -> None:
    """Typed place: fuzzy names and landmarks first, then the geocoder if configured."""
    _ = ctx.gettext
    text = text[:300]
    candidate: dict[str, Any] | None = None
    matches = ctx.svc.areas.match_place(text) if len(text) >= 3 else []
    if matches:
        m = matches[0]
        lat, lon = m.point
        hit = ctx.svc.areas.locate(lat, lon)
        candidate = {
            "lat": lat,
            "lon": lon,
            "place_text": m.name,
            "location_source": "typed",
            "kode_kel": hit.kode_kel if hit else (m.code if m.kind == "kelurahan" else None),
            "nama_kel": hit.nama_kel if hit else (m.name if m.kind == "kelurahan" else None),
            "kode_kec": hit.kode_kec if hit else m.kode_kec,
            "nama_kec": hit.nama_kec if hit else None,
            "precise": m.kind == "landmark",
        }
    elif ctx.svc.geocoder is not None and len(text) >= 3:
        found = ctx.svc.geocoder.geocode(place_query(ctx.svc, text))
        if found is not None:
            hit = ctx.svc.areas.locate(found.lat, found.lon)
            if hit is not None:
                candidate = {
                    "lat": found.lat,
                    "lon": found.lon,
                    "place_text": str(found.display_name)[:300],
                    "location_source": "typed",
                    "kode_kel": hit.kode_kel,
                    "nama_kel": hit.nama_kel,
                    "kode_kec": hit.kode_kec,
                    "nama_kec": hit.nama_kec,
                    "precise": True,
                }
    if candidate is None:
        ctx.reply(
            _(
                "Sorry, I could not find “{text}” in {city}. Try the kelurahan name "
                "(for example “{example}”), or share your location."
            ).format(text=text[:80], city=ctx.svc.city.city.name, example=_example_kel(ctx)),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
        return
    data["pending_place"] = candidate
    ctx.set_state("report.place_confirm", data)
    shown = place_text(_, candidate)
    if candidate.get("place_text") and candidate["place_text"] != candidate.get("nama_kel"):
        shown = f"{candidate['place_text']} ({shown})"
    ctx.reply(
        _("Did you mean: {place}?").format(place=shown),
        (Choice("loc:yes", _("✅ Yes, that's right")), Choice("loc:no", _("✏️ No, try again"))),
    )


def _example_kel(ctx: Ctx) -> str:
    kel = list(ctx.svc.city.kelurahan)
    return kel[0].name if kel else ""


def _step_place_confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "choice" and ev.choice == "loc:yes" and data.get("pending_place"):
        place = data.pop("pending_place")
        place.pop("precise", None)
        data.update(place)
        ask_next(ctx, data)
        return
    if ev.kind == "choice" and ev.choice == "loc:no":
        data.pop("pending_place", None)
        data["lat"] = data["lon"] = None
        data["kode_kel"] = None
        ctx.set_state("report.location", data)
        ctx.reply(
            _("Please type the place again, or share your location."),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
        return
    if ev.kind == "location" or (ev.kind == "text" and ev.text):
        data.pop("pending_place", None)
        ctx.set_state("report.location", data)
        _step_location(ctx, data)
        return
    ctx.reply(
        _("Please answer with the buttons: is this the right place?"),
        (Choice("loc:yes", _("✅ Yes, that's right")), Choice("loc:no", _("✏️ No, try again"))),
    )


def _step_photo(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "photo":
        if add_photo(ctx, data):
            if len(data["photos"]) >= MAX_PHOTOS:
                data["photos_done"] = True
            ask_next(ctx, data)
        return
    if ev.kind == "choice" and ev.choice == "ph:done":
        data["photos_done"] = True
        ask_next(ctx, data)
        return
    ctx.reply(
        _("Send a photo, or press the button to go on."),
        (Choice("ph:done", _("⏭️ Skip") if not data.get("photos") else _("➡️ Continue")),),
    )


def review_card(ctx: Ctx, data: dict[str, Any]) -> tuple[str, tuple[Choice, ...]]:
    _ = ctx.gettext
    city = ctx.svc.city
    opd = city.route(data["category"], data.get("kode_kec"))
    text = _(
        "Please check your report:\n\n"
        "Category: {category}\n"
        "Description: {description}\n"
        "Place: {place}\n"
        "Photos: {photos}\n"
        "Goes to: {opd}"
    ).format(
        category=category_label(city, data["category"], ctx.lang),
        description=data["description"],
        place=place_text(_, data),
        photos=len(data.get("photos") or []),
        opd=opd_label(city, opd),
    )
    anonymous = bool(data.get("anonymous"))
    if anonymous:
        text += "\n\n" + _("🕶️ Anonymous: officers will not see who you are.")
    elif ctx.person.share_contact:
        text += "\n\n" + _("📇 Officers may see your name and contact to follow up.")
    return text, (
        Choice("rv:send", _("✅ Send")),
        Choice("rv:edit", _("✏️ Change")),
        Choice("rv:anon", _("👤 Show my identity") if anonymous else _("🕶️ Send anonymously")),
        Choice(
            "rv:contact",
            _("🚫 Keep my contact private")
            if ctx.person.share_contact
            else _("📇 Share my contact with officers"),
        ),
        Choice("rv:cancel", _("❌ Cancel")),
    )


def _step_review(ctx: Ctx, data: dict[str, Any]) -> None:
    _ = ctx.gettext
    ev = ctx.event
    if ev.kind == "choice" and ev.choice == "rv:send":
        # e.g. the duplicate check: a hook that returns True took over the conversation
        if any(check(ctx, data) for check in ctx.svc.extra.get("before_submit", [])):
            return
        submit(ctx, data)
        return
    if ev.kind == "choice" and ev.choice == "rv:anon":
        data["anonymous"] = not data.get("anonymous")
        ctx.set_state("report.review", data)
        ctx.reply(*review_card(ctx, data))
        return
    if ev.kind == "choice" and ev.choice == "rv:contact":
        WorkRepo(ctx.repo).set_share_contact(ctx.person, not ctx.person.share_contact)
        ctx.reply(*review_card(ctx, data))
        return
    if ev.kind == "choice" and ev.choice == "rv:cancel":
        ctx.clear_state()
        ctx.reply(_("Cancelled. Nothing was sent."), main_menu(_))
        return
    if ev.kind == "choice" and ev.choice == "rv:edit":
        ctx.set_state("report.edit", data)
        ctx.reply(
            _("What do you want to change?"),
            (
                Choice("ed:category", _("Category")),
                Choice("ed:description", _("Description")),
                Choice("ed:location", _("Place")),
                Choice("ed:photos", _("Photos")),
                Choice("ed:back", _("↩️ Back")),
            ),
        )
        return
    _text, choices = review_card(ctx, data)
    ctx.reply(_("Please press Send, Change or Cancel."), choices)


def _step_edit(ctx: Ctx, data: dict[str, Any]) -> None:
    ev = ctx.event
    what = (ev.choice or "").partition(":")[2] if ev.kind == "choice" else ""
    if what == "category":
        data["category"] = None
    elif what == "description":
        data["description"] = None
    elif what == "location":
        for k in ("lat", "lon", "kode_kel", "nama_kel", "kode_kec", "nama_kec", "place_text"):
            data[k] = None
    elif what == "photos":
        data["photos"] = []
        data["photos_done"] = False
    elif what != "back":
        ctx.reply(ctx.gettext("Please choose with the buttons what to change."))
        return
    ask_next(ctx, data)


# --- helpers that change the draft ----------------------------------------------------------------
def add_photo(ctx: Ctx, data: dict[str, Any]) -> bool:
    _ = ctx.gettext
    ev = ctx.event
    if ev.photo_error or ev.photo is None:
        reason = {
            "too_large": _("That photo is too large. Please send a smaller one."),
            "bad_type": _("I can only use JPEG, PNG or WebP photos."),
        }.get(ev.photo_error or "", _("I could not download that photo. Please send it again."))
        ctx.reply(reason)
        return False
    photos = list(data.get("photos") or [])
    if len(photos) >= MAX_PHOTOS:
        ctx.reply(_("You already added {max} photos; that is the maximum.").format(max=MAX_PHOTOS))
        return False
    if any(p["sha256"] == ev.photo.sha256 for p in photos):
        return True
    photos.append(
        {
            "sha256": ev.photo.sha256,
            "mime": ev.photo.mime,
            "size": ev.photo.size,
            "path": ev.photo.path,
            "channel_file_id": ev.photo.channel_file_id,
        }
    )
    data["photos"] = photos
    return True


def set_point(
    ctx: Ctx, data: dict[str, Any], lat: float | None, lon: float | None, *, source: str
) -> bool:
    """Put a point in the draft if it lies in the city; otherwise say so (and keep the step)."""
    _ = ctx.gettext
    assert lat is not None and lon is not None
    hit = ctx.svc.areas.locate(lat, lon)
    if hit is None:
        ctx.reply(
            _(
                "That location is outside {city}. I can only take reports within {city}. "
                "Please share a location in {city}, or type the kelurahan name."
            ).format(city=ctx.svc.city.city.name),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
        return False
    data.update(
        lat=round(lat, 6),
        lon=round(lon, 6),
        kode_kel=hit.kode_kel,
        nama_kel=hit.nama_kel,
        kode_kec=hit.kode_kec,
        nama_kec=hit.nama_kec,
        location_source=source,
        place_text=None,
    )
    if ctx.svc.geocoder is not None:
        address = ctx.svc.geocoder.reverse(lat, lon)
        if address:
            data["place_text"] = str(address)[:300]
    return True


def report_code(ctx: Ctx) -> str:
    prefix = ctx.svc.city.city.prefix
    now = ctx.svc.clock().astimezone(_tz(ctx.svc.city.city.timezone))
    yymm = now.strftime("%y%m")
    seq = ctx.repo.next_sequence(f"report:{prefix}:{yymm}")
    return f"{prefix}-{yymm}-{seq:04d}"


def _tz(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def submit(ctx: Ctx, data: dict[str, Any]) -> Report:
    """Create the report, its first event and photos; tell the citizen its ticket number."""
    _ = ctx.gettext
    now = ctx.svc.clock()
    city = ctx.svc.city
    opd = city.route(data["category"], data.get("kode_kec"))
    assert ctx.person.id is not None
    report = ctx.repo.add_report(
        Report(
            code=report_code(ctx),
            person_id=ctx.person.id,
            channel=ctx.event.channel,
            category=data["category"],
            description=data["description"],
            lat=data.get("lat"),
            lon=data.get("lon"),
            place_text=data.get("place_text"),
            location_source=data.get("location_source") or "gps",
            kode_kel=data.get("kode_kel"),
            kode_kec=data.get("kode_kec"),
            status=STATUS_NEW,
            opd=opd,
            anonymous=bool(data.get("anonymous")),
            created_at=now,
            updated_at=now,
        )
    )
    assert report.id is not None
    ctx.repo.add_event(
        ReportEvent(
            report_id=report.id,
            kind="created",
            status_to=STATUS_NEW,
            actor_person_id=ctx.person.id,
            actor_role="citizen",
            created_at=now,
        )
    )
    for p in data.get("photos") or []:
        ctx.repo.add_photo(
            Photo(
                report_id=report.id,
                sha256=p["sha256"],
                path=p["path"],
                mime=p["mime"],
                size=p["size"],
                channel_file_id=p.get("channel_file_id"),
                role="report",
                created_at=now,
            )
        )
    ctx.clear_state()
    ctx.reply(
        _(
            "✅ Thank you! Your report has been received.\n\n"
            "Ticket number: {code}\n"
            "Sent to: {opd}\n\n"
            "You will get a message every time its status changes. "
            "Check it any time with /status {code}"
        ).format(code=report.code, opd=opd_label(city, opd)),
        main_menu(_),
    )
    for hook in ctx.svc.extra.get("on_report_created", []):
        hook(ctx, report)
    return report


# --- my reports -------------------------------------------------------------------------------
def cmd_my_reports(ctx: Ctx) -> None:
    _ = ctx.gettext
    assert ctx.person.id is not None
    reports = ctx.repo.reports_of(ctx.person.id, limit=10)
    if not reports:
        ctx.reply(_("You have not made any reports yet. Type /lapor to make one."), main_menu(_))
        return
    lines = [_("Your latest reports:")]
    for r in reports:
        lines.append(
            f"• {r.code} · {category_label(ctx.svc.city, r.category, ctx.lang)} · "
            f"{status_label(_, r.status)} · {local_time(ctx, r.created_at, ctx.lang)}"
        )
    lines.append("")
    lines.append(_("Details: /status CODE"))
    ctx.reply("\n".join(lines))


def cmd_status(ctx: Ctx) -> None:
    _ = ctx.gettext
    code = (ctx.event.args or "").strip().split(" ")[0].upper()[:24]
    if not code:
        ctx.reply(_("Please write the ticket number, for example: /status PLU-2611-0042"))
        return
    report = ctx.repo.report_by_code(code)
    if report is None or not can_see_report(ctx, report):
        ctx.reply(_("I could not find report {code} among your reports.").format(code=code))
        return
    ctx.reply(status_card(ctx, report))


EVENT_LABELS = {
    "handover": N_("handed over"),
    "reopened": N_("reopened"),
    "proof": N_("proof photo added"),
    "comment": N_("your comment"),
    "confirmed": N_("confirmed as solved"),
    "rating": N_("rating"),
    "closed": N_("closed"),
}


def can_see_report(ctx: Ctx, report: Report) -> bool:
    if report.person_id == ctx.person.id:
        return True
    checks = ctx.svc.extra.get("can_see_report", [])
    return any(check(ctx, report) for check in checks)


def status_card(ctx: Ctx, report: Report) -> str:
    _ = ctx.gettext
    assert report.id is not None
    lines = [
        _("Report {code}").format(code=report.code),
        _("Category: {category}").format(
            category=category_label(ctx.svc.city, report.category, ctx.lang)
        ),
        _("Status: {status}").format(status=status_label(_, report.status)),
        _("Handled by: {opd}").format(opd=opd_label(ctx.svc.city, report.opd)),
        "",
        _("History:"),
    ]
    for ev in ctx.repo.events(report.id):
        line = f"• {local_time(ctx, ev.created_at, ctx.lang)} – "
        if ev.kind == "created":
            line += _("report received")
        elif ev.kind in EVENT_LABELS:
            line += _(EVENT_LABELS[ev.kind])
        elif ev.status_to:
            line += status_label(_, ev.status_to)
        else:
            line += ev.kind
        if ev.note:
            line += f": {ev.note}"
        lines.append(line)
    return "\n".join(lines)


def register(reg: Registry) -> None:
    reg.commands.update(
        {
            "start": cmd_start,
            "lapor": cmd_report,
            "laporanku": cmd_my_reports,
            "status": cmd_status,
            "batal": cmd_cancel,
            "bahasa": cmd_language,
            "bantuan": cmd_help,
        }
    )
    reg.command_aliases.update(
        {
            "help": "bantuan",
            "report": "lapor",
            "cancel": "batal",
            "language": "bahasa",
            "myreports": "laporanku",
        }
    )
    reg.steps["report"] = step_report
    reg.choices["menu"] = on_menu
    reg.choices["lang"] = on_language
    reg.idle = on_idle


def reply_of(text: str) -> Reply:
    return Reply(text=text)


__all__ = ["MediaRef", "register"]
