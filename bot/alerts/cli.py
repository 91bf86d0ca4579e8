"""`lapor broadcast …`: announcements (and manual warnings) from the command line.

The command writes the broadcast row; the running bot fans it out and sends it (a scheduled one
is armed by the bot's scheduler).  `--follow` shows a progress bar until it is done.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from bot.alerts.audience import Audience, Circle, Everyone, Kecamatan, Kelurahan
from storage.alert_models import BC_CANCELLED, BC_DONE, KIND_ANNOUNCEMENT, KIND_WARNING
from storage.alert_repo import AlertRepo

broadcast_app = typer.Typer(help="Announcements and warnings to subscribers.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"lapor: {message}", err=True)
    raise typer.Exit(2)


def _codes(raw: str) -> list[str]:
    return [c.strip() for c in raw.split(",") if c.strip()]


def parse_audience(
    everyone: bool, kecamatan: str | None, kelurahan: str | None, circle: str | None
) -> Audience:
    given = sum(bool(x) for x in (everyone, kecamatan, kelurahan, circle))
    if given != 1:
        raise ValueError("choose exactly one of --everyone, --kecamatan, --kelurahan, --circle")
    if kecamatan:
        return Kecamatan(_codes(kecamatan))
    if kelurahan:
        return Kelurahan(_codes(kelurahan))
    if circle:
        parts = [float(p) for p in circle.replace(" ", "").split(",")]
        if len(parts) != 3:
            raise ValueError("--circle wants LAT,LON,RADIUS_KM")
        return Circle(parts[0], parts[1], parts[2])
    return Everyone()


def parse_at(raw: str, tz: str) -> datetime:
    """ISO time; without an offset it is the city's local time."""
    ts = datetime.fromisoformat(raw.strip().replace(" ", "T", 1))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(tz))
    return ts.astimezone(UTC)


def _context():  # type: ignore[no-untyped-def]
    from bot.alerts.wiring import alerts_from_settings
    from bot.city import load_city
    from bot.cli import settings_or_exit
    from bot.i18n import I18n
    from storage.db import Database, upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    city = load_city(settings.city, settings.cities_dir)
    alerts = alerts_from_settings(settings, db, I18n(settings.default_locale), city)
    return settings, db, city, alerts.broadcasts


@broadcast_app.command("send")
def send(
    text: str = typer.Option(..., "--text", help="The message (or @file.txt)"),
    everyone: bool = typer.Option(
        False,
        "--everyone",
        help="All who said yes to announcements (with --warning: all warning subscribers)",
    ),
    kecamatan: str = typer.Option(None, "--kecamatan", help="Kecamatan codes, comma-separated"),
    kelurahan: str = typer.Option(None, "--kelurahan", help="Kelurahan codes, comma-separated"),
    circle: str = typer.Option(None, "--circle", help="LAT,LON,RADIUS_KM"),
    photo: Path = typer.Option(None, "--photo", help="A JPEG/PNG/WebP photo to send with it"),
    at: str = typer.Option(None, "--at", help="Schedule: ISO time, city time if no offset"),
    warning: str = typer.Option(None, "--warning", help="Send as a warning of this level"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    follow: bool = typer.Option(False, "--follow", help="Show progress until it is sent"),
) -> None:
    """Queue a broadcast (the running bot sends it)."""
    settings, db, city, broadcasts = _context()
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    text = text.strip()
    if not text:
        _fail("--text is empty")
    try:
        audience = parse_audience(everyone, kecamatan, kelurahan, circle)
        when = parse_at(at, city.city.timezone) if at else None
    except ValueError as exc:
        _fail(str(exc))
        return
    codes: frozenset[str] = getattr(audience, "codes", frozenset())
    unknown = [
        c
        for c in sorted(codes)
        if city.kelurahan_by_code(c) is None and city.kecamatan_by_code(c) is None
    ]
    if unknown:
        _fail(f"unknown area code(s) for {city.city.name}: {', '.join(unknown)}")
    if warning and warning not in ("waspada", "siaga", "awas", "normal"):
        _fail("--warning must be waspada, siaga, awas or normal")
    media = None
    if photo is not None:
        from bot.media import MediaError, MediaStore

        try:
            media = MediaStore(settings.media_dir, settings.max_photo_bytes).store_image(
                photo.read_bytes()
            )
        except (OSError, MediaError) as exc:
            _fail(f"cannot use {photo}: {exc}")
    kind = KIND_WARNING if warning else KIND_ANNOUNCEMENT
    with db.unit() as uow:
        n = broadcasts.count_recipients(AlertRepo(uow), audience, kind)
    about = broadcasts.describe_audience(audience, lambda m: m, kind)
    typer.echo(f"to: {about} — {n} recipients now")
    if not yes and not typer.confirm("send?"):
        raise typer.Exit(1)
    with db.unit() as uow:
        arepo = AlertRepo(uow)
        if warning:
            bc = broadcasts.new_warning(
                arepo, source="admin", level=warning, audience=audience, texts={"*": text}
            )
        else:
            bc = broadcasts.new_broadcast(
                arepo, source="admin", audience=audience, texts={"*": text}, photo=media,
                scheduled_at=when, kind=KIND_ANNOUNCEMENT,
            )  # fmt: skip
        bid = bc.id
    assert bid is not None
    typer.echo(f"broadcast #{bid} " + (f"scheduled for {when.isoformat()}" if when else "queued"))
    if follow:
        _follow(db, bid)


def _follow(db, bid: int, timeout: float = 24 * 3600) -> None:  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("#{task.fields[bid]} {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
    ) as bar:
        task = bar.add_task("send", total=None, bid=bid, state="", failed=0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with db.unit() as uow:
                arepo = AlertRepo(uow)
                bc = arepo.broadcast(bid)
                counts = arepo.broadcast_counts(bid)
            assert bc is not None
            total = bc.messages if bc.fanned_at else None
            bar.update(
                task,
                completed=counts.get("sent", 0),
                total=total,
                state=bc.state,
                failed=counts.get("failed", 0) + counts.get("cancelled", 0),
            )
            if bc.state in (BC_DONE, BC_CANCELLED):
                return
            time.sleep(0.5)


@broadcast_app.command("status")
def status(broadcast_id: int = typer.Argument(None)) -> None:
    """Progress of recent broadcasts (or one)."""
    _settings, db, _city, _broadcasts = _context()
    with db.unit() as uow:
        arepo = AlertRepo(uow)
        rows = [arepo.broadcast(broadcast_id)] if broadcast_id else arepo.recent_broadcasts(10)
        for bc in rows:
            if bc is None or bc.id is None:
                _fail("no such broadcast")
                return
            c = arepo.broadcast_counts(bc.id)
            kind = "warning" if bc.kind == KIND_WARNING else "announcement"
            typer.echo(
                f"#{bc.id} {kind} {bc.state}: sent {c.get('sent', 0)}, failed "
                f"{c.get('failed', 0)}, pending {c.get('pending', 0) + c.get('sending', 0)}, "
                f"cancelled {c.get('cancelled', 0)}"
            )


@broadcast_app.command("cancel")
def cancel(broadcast_id: int) -> None:
    """Stop a broadcast: queued messages are cancelled, a schedule is dropped."""
    _settings, _db, _city, broadcasts = _context()
    n = broadcasts.cancel(broadcast_id)
    if n is None:
        _fail(f"broadcast #{broadcast_id} not found or already ended")
    typer.echo(f"broadcast #{broadcast_id} cancelled; {n} queued messages dropped")
