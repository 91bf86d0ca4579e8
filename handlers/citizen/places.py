"""Where a report is: a shared point or a typed place (kelurahan, landmark, address).

    report.location ─ point in the city ─────────────────────────────► next step
          │ typed text: kelurahan / landmark names, else the geocoder's answer
          ▼
    report.place_confirm ─ ✅ yes ─► next step · ✏️ no ─► report.location
                           (typed text or a point again: looked up afresh)

The geocoder is never called from here: `geocoder_question` says what the inbox worker must
ask it before the transaction, and the answer arrives on the event (`Inbound.geo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from handlers.core import Ctx
from handlers.events import Choice, Inbound
from handlers.labels import place_text
from handlers.services import Services

# Steps that take a place: a shared point there is looked up (reverse), and so is typed text.
# `None`: no conversation (a shared point starts a report).
PLACE_STEPS = frozenset({"report.location", "report.place_confirm"})
POINT_STEPS = PLACE_STEPS | {None}


@dataclass(frozen=True)
class GeoQuestion:
    """What to ask the geocoder for an event, before its transaction."""

    kind: Literal["reverse", "forward"]
    lat: float = 0.0
    lon: float = 0.0
    query: str = ""


def geocoder_question(svc: Services, step: str | None, ev: Inbound) -> GeoQuestion | None:
    """The geocoder lookup that handling `ev` at `step` can use, if any: the address of a
    shared point in the city, or where a typed place is (when the city's own names and
    landmarks do not know it)."""
    if ev.kind == "location" and step in POINT_STEPS and ev.lat is not None and ev.lon is not None:
        if svc.areas.locate(ev.lat, ev.lon) is not None:
            return GeoQuestion("reverse", lat=ev.lat, lon=ev.lon)
    if ev.kind == "text" and step in PLACE_STEPS and ev.text:
        text = ev.text.strip()[:300]
        if len(text) >= 3 and not svc.areas.match_place(text):
            return GeoQuestion("forward", query=place_query(svc, text))
    return None


def place_query(svc: Services, text: str) -> str:
    """What the geocoder is asked for a typed place."""
    return f"{text[:300]}, {svc.city.city.name}"


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
    elif (found := ctx.event.geo) and found.lat is not None and found.lon is not None:
        # the geocoder's answer, looked up before the transaction (`geocoder_question`)
        hit = ctx.svc.areas.locate(found.lat, found.lon)
        if hit is not None:
            candidate = {
                "lat": found.lat,
                "lon": found.lon,
                "place_text": str(found.name or text)[:300],
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
    geo = ctx.event.geo  # the address, looked up before the transaction
    if geo is not None and geo.lat is None and geo.name:
        data["place_text"] = str(geo.name)[:300]
    return True
