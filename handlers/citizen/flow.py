"""The citizen's report flow (step names are stored in the database)::

    report.category -> report.description -> report.location -> report.photo -> report.review
                                              |  typed place  |   (a photo, or    Kirim -> ticket
                                              v               |    "Lewati")      + photo (≤ 3)
                                    report.place_confirm      v                   Ubah -> edit
                                     a similar report nearby: dup.choose          Batal -> cleared
    report.edit: pick a field; it is asked again, then the review card comes back.
    dup.choose (handlers/feedback.py): as soon as category and place are known, an open report
    of the same kind nearby is offered for support; "no" goes on with the report.

Six taps from /lapor to a ticket with GPS and photo: /lapor, category, description, location,
photo, Kirim (the review card follows the photo; "📷 Add a photo" there for more).

Whatever is already in the draft is skipped (a photo or location sent outside a report starts
one with it filled in). Any step: /batal leaves, unknown input gets that step's hint.
Places are handled in `handlers/citizen/places.py`.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from handlers.cards import contact_parts
from handlers.citizen import places
from handlers.core import Ctx
from handlers.events import Choice
from handlers.labels import category_label, main_menu, opd_label, place_text
from handlers.text import visible
from storage.models import STATUS_NEW, Photo, Report, ReportEvent

MIN_DESC = 5
MAX_DESC = 2000
MAX_PHOTOS = 3


def cmd_report(ctx: Ctx) -> None:
    ctx.clear_state()
    ask_next(ctx, new_draft())


def new_draft() -> dict[str, Any]:
    return {"photos": [], "photos_done": False}


def ask_next(ctx: Ctx, data: dict[str, Any]) -> None:
    """Ask for the first thing the draft lacks; with nothing missing, show the review card."""
    _ = ctx.gettext
    has_place = data.get("lat") is not None or bool(data.get("kode_kel"))
    if not data.get("category"):
        ctx.set_state("report.category", data)
        ctx.reply(*category_prompt(ctx, data))
    elif has_place and _place_taken_over(ctx, data):
        return  # e.g. a similar report nearby: offered before anything more is typed
    elif not data.get("description"):
        ctx.set_state("report.description", data)
        ctx.reply(
            _("Describe the problem in a few sentences (at least {min} characters).").format(
                min=MIN_DESC
            )
        )
    elif not has_place:
        ctx.set_state("report.location", data)
        ctx.reply(
            _(
                "Where is it? Press “📍 Share location” below, or type an address, "
                "kelurahan or landmark."
            ),
            ask_location=True,
            location_label=_("📍 Share location"),
        )
    elif not data.get("photos_done") and not data.get("photos"):
        ctx.set_state("report.photo", data)
        ctx.reply(
            _("Send a photo of the problem (up to {max}), or press Skip.").format(max=MAX_PHOTOS),
            (Choice("ph:done", _("⏭️ Skip")),),
            remove_keyboard=True,
        )
    else:
        ctx.set_state("report.review", data)
        ctx.reply(*review_card(ctx, data))


def _place_taken_over(ctx: Ctx, data: dict[str, Any]) -> bool:
    """Once what and where are known: the hooks that look at the place (the duplicate offer)
    may take over the conversation; each looks once per place."""
    if not data.get("category") or data.get("place_checked"):
        return False
    data["place_checked"] = True
    return any(check(ctx, data) for check in ctx.svc.hooks.after_place)


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
    text = visible(ev.text)
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
        if places.set_point(ctx, data, ev.lat, ev.lon, source="gps"):
            ask_next(ctx, data)
        return
    if ev.kind == "text" and ev.text:
        places.resolve_place(ctx, data, ev.text.strip())
        return
    ctx.reply(
        _("Please press “📍 Share location”, or type the address or kelurahan name."),
        ask_location=True,
        location_label=_("📍 Share location"),
    )


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
    if ev.kind == "photo":  # straight on to the review card, which can add more
        if add_photo(ctx, data):
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
        shared = contact_parts(ctx.person, ctx.repo.identities_of(ctx.person.id))
        text += "\n\n" + _("📇 Officers will see your contact to follow up: {contact}").format(
            contact=" · ".join(shared) or "-"
        )
    more = len(data.get("photos") or []) < MAX_PHOTOS
    return text, (
        Choice("rv:send", _("✅ Send")),
        *((Choice("ph:more", _("📷 Add a photo")),) if more else ()),
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
        if any(check(ctx, data) for check in ctx.svc.hooks.before_submit):
            return
        submit(ctx, data)
        return
    if ev.kind == "choice" and ev.choice == "rv:anon":
        data["anonymous"] = not data.get("anonymous")
        ctx.set_state("report.review", data)
        ctx.reply(*review_card(ctx, data))
        return
    if ev.kind == "choice" and ev.choice == "rv:contact":
        ctx.repo.set_share_contact(ctx.person, not ctx.person.share_contact)
        ctx.reply(*review_card(ctx, data))
        return
    if ev.kind == "choice" and ev.choice == "rv:cancel":
        ctx.clear_state()
        ctx.reply(_("Cancelled. Nothing was sent."), main_menu(_))
        return
    if ev.kind == "choice" and ev.choice == "ph:more":
        ctx.reply(_("Send the photo now (up to {max} in all).").format(max=MAX_PHOTOS))
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
        data["place_checked"] = data["dup_checked"] = False
    elif what == "description":
        data["description"] = None
    elif what == "location":
        for k in ("lat", "lon", "kode_kel", "nama_kel", "kode_kec", "nama_kec", "place_text"):
            data[k] = None
        data["place_checked"] = data["dup_checked"] = False  # a new place: look again
    elif what == "photos":
        data["photos"] = []
        data["photos_done"] = False
    elif what != "back":
        ctx.reply(ctx.gettext("Please choose with the buttons what to change."))
        return
    ask_next(ctx, data)


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


def report_code(ctx: Ctx) -> str:
    prefix = ctx.svc.city.city.prefix
    now = ctx.svc.clock().astimezone(ZoneInfo(ctx.svc.city.city.timezone))
    yymm = now.strftime("%y%m")
    seq = ctx.repo.next_sequence(f"report:{prefix}:{yymm}")
    return f"{prefix}-{yymm}-{seq:04d}"


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
    for hook in ctx.svc.hooks.on_report_created:
        hook(ctx, report)
    return report
