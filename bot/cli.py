"""The `lapor` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from bot.config import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Lapor Warga: citizen reports and early warnings by chat.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
city_app = typer.Typer(help="City profiles.", no_args_is_help=True)
areas_app = typer.Typer(help="Kelurahan boundaries.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(city_app, name="city")
admin_app = typer.Typer(help="Administrators (Diskominfo, BPBD).", no_args_is_help=True)
app.add_typer(areas_app, name="areas")
app.add_typer(admin_app, name="admin")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"lapor: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))
        raise AssertionError from exc  # unreachable


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


NO_CHANNEL = """no chat channel is configured and DEMO_ENABLED=false, so there is nothing to run.
Unset DEMO_ENABLED to try the web demo chat, or set at least one of:
  TELEGRAM_BOT_TOKEN=123456:ABC...   (from @BotFather on Telegram; see README.md)
  WHATSAPP_TOKEN, WHATSAPP_PHONE_ID, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN
                                     (WhatsApp Cloud API; see README.md)
in the environment or in a .env file, then run `make run` again."""


@app.command()
def run() -> None:
    """Run the bot: channels, HTTP server, scheduler and outbox sender, in one process."""
    settings = settings_or_exit()
    setup_logging(settings.log_level)
    from bot.app import App
    from bot.city import CityProfileError
    from storage.db import describe_failure, is_outage

    try:
        application = App(settings)
    except CityProfileError as exc:
        fail(f"setting CITY: {exc}")
        return
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
        return
    except Exception as exc:
        if not is_outage(exc):  # down, refusing us, or no such file
            raise
        fail(f"setting DATABASE_URL: {describe_failure(settings.database_url, exc)}")
        return
    if not application.channels:
        fail(NO_CHANNEL)

    async def announce_demo() -> None:
        await application.started.wait()
        url = application.demo_url()
        if url:
            only = set(application.channels) == {"web"}
            typer.echo(f"Demo chat (no token needed): {url}")
            if only:
                typer.echo("No Telegram/WhatsApp settings: only the web demo runs (see README.md).")

    from bot.runtime import tune_process

    tune_process()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        announcer = asyncio.create_task(announce_demo())
        await application.run(stop)
        announcer.cancel()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations (`lapor run` does this on start too)."""
    from storage.db import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION ('base' = empty)."""
    from storage.db import downgrade

    settings = settings_or_exit()
    downgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@city_app.command("check")
def city_check(city: str = typer.Option(None, help="Profile name (default: CITY)")) -> None:
    """Validate a city profile and print a summary."""
    from bot.city import load_city
    from bot.tools import city_check_summary

    settings = settings_or_exit()
    try:
        profile = load_city(city or settings.city, settings.cities_dir)
    except Exception as exc:
        fail(str(exc))
        return
    ok, summary = city_check_summary(profile)
    typer.echo(summary)
    raise typer.Exit(0 if ok else 1)


def _open_in(path: str):  # type: ignore[no-untyped-def]
    return sys.stdin if path == "-" else open(path, encoding="utf-8", newline="")


@app.command()
def locate(
    csv: str = typer.Option(..., "--csv", help="CSV with lat,lon columns; - for stdin"),
) -> None:
    """Add kelurahan/kecamatan columns to a CSV of points (writes CSV to stdout)."""
    from bot.city import load_city
    from bot.geo import AreaIndex
    from bot.tools import locate_csv
    from storage.db import Database, upgrade
    from storage.repo import Repo

    settings = settings_or_exit()
    profile = load_city(settings.city, settings.cities_dir)
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    with db.session() as s:
        polygons = Repo(s).area_polygons()
    index = AreaIndex(profile, polygons or None)
    with _open_in(csv) as inp:
        locate_csv(inp, sys.stdout, index)


@app.command()
def triage(
    csv: str = typer.Option(..., "--csv", help="CSV with a text column; - for stdin"),
) -> None:
    """Add category,opd,confidence columns to a CSV of complaint texts (CSV to stdout)."""
    from bot.city import load_city
    from bot.tools import triage_csv
    from bot.triage import Triage

    settings = settings_or_exit()
    profile = load_city(settings.city, settings.cities_dir)
    with _open_in(csv) as inp:
        triage_csv(inp, sys.stdout, Triage(profile.categories), profile)


@areas_app.command("import")
def areas_import(path: Path) -> None:
    """Load kelurahan polygons (GeoJSON) for the configured city."""
    from bot.city import load_city
    from bot.geo import parse_kelurahan_geojson
    from storage.db import Database, upgrade
    from storage.repo import Repo

    settings = settings_or_exit()
    profile = load_city(settings.city, settings.cities_dir)
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
        return
    result = parse_kelurahan_geojson(data, profile)
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    with db.session() as s:
        repo = Repo(s)
        for code, geometry in result.loaded.items():
            kel = profile.kelurahan_by_code(code)
            assert kel is not None
            repo.save_area_polygon(code, kel.kecamatan, kel.name, geometry)
    typer.echo(f"loaded {len(result.loaded)} kelurahan polygons for {profile.city.name}")
    for ident, reason in result.refused:
        typer.echo(f"refused {ident}: {reason}")
    missing = len(profile.kelurahan) - len(result.loaded)
    if missing:
        typer.echo(f"{missing} kelurahan of the profile have no polygon (centroids are used)")
    raise typer.Exit(0 if result.loaded else 1)


def _open_db(settings: Settings):  # type: ignore[no-untyped-def]
    from storage.db import Database, upgrade

    upgrade(settings.database_url)
    return Database(settings.database_url)


def _whatsapp_id(raw: str) -> str:
    """A WhatsApp id from the command line: a phone number (any usual spelling, with its
    country code) as its digits, else a business-scoped user id ("ID.123…") as it is."""
    from storage.people import phone_digits

    value = raw.strip()
    if "." in value and value[:2].isalpha():  # a business-scoped user id
        return value
    digits = phone_digits(value)
    if digits is None:
        fail(
            f"--whatsapp {raw!r} is not a phone number with its country code "
            "(e.g. 6281234567890) nor a WhatsApp user id (e.g. ID.1234567890)"
        )
    assert digits is not None
    return digits


@admin_app.command("add")
def admin_add(
    telegram: str = typer.Option(None, "--telegram", help="Telegram user id (numeric)"),
    whatsapp: str = typer.Option(
        None, "--whatsapp", help="WhatsApp phone number with country code, or user id"
    ),
) -> None:
    """Make a person an admin (created if they have not written to the bot yet)."""
    from storage.models import ROLE_ADMIN
    from storage.people import WHATSAPP
    from storage.repo import Repo

    if not telegram and not whatsapp:
        fail("give --telegram ID and/or --whatsapp ID")
    if telegram and not telegram.lstrip("-").isdigit():
        fail("--telegram must be the numeric Telegram user id")
    wa_id = _whatsapp_id(whatsapp) if whatsapp else None
    settings = settings_or_exit()
    db = _open_db(settings)
    lang = settings.default_locale
    with db.unit() as uow:
        repo = Repo(uow)
        person_id = None
        if telegram:
            _ident, person, _new = repo.register_identity(
                "telegram", telegram, telegram, language=lang
            )
            person_id = person.id
        if wa_id and wa_id.isdigit():  # one person, two channels: a new identity joins
            _ident, person, _new = repo.whatsapp_identity_for_phone(
                wa_id, language=lang, person_id=person_id
            )
            person_id = person_id or person.id
        elif wa_id:
            _ident, person, _new = repo.register_identity(
                WHATSAPP, wa_id, wa_id, language=lang, person_id=person_id
            )
            person_id = person_id or person.id
        assert person_id is not None
        repo.set_staff(person_id, ROLE_ADMIN, None)
        _send_menu(repo, settings, person_id)
    typer.echo(f"person {person_id} is now an admin")


def _send_menu(repo: Any, settings: Settings, person_id: int) -> None:
    """The person's Telegram command menu for their role now (through the outbox; the
    running bot sends it)."""
    from bot.i18n import I18n
    from handlers.help import menu_messages

    repo.uow.send(menu_messages(repo, I18n(settings.default_locale), person_id))
    repo.uow.flush()


# --- officers ------------------------------------------------------------------------------------
officer_app = typer.Typer(help="OPD officers and heads.", no_args_is_help=True)
app.add_typer(officer_app, name="officer")


@app.command()
def invite(
    opd: str = typer.Option(..., "--opd", help="OPD code from the city profile, e.g. DLH"),
    head: bool = typer.Option(False, "--head", help="Invite the OPD head (escalations, stats)"),
    days: int = typer.Option(7, "--days", min=1, max=30, help="Days until the code expires"),
) -> None:
    """Print a one-time invite code; the officer sends `/daftar CODE` to the bot."""
    from bot.city import load_city
    from handlers.officer import create_invite
    from storage.models import ROLE_HEAD, ROLE_OFFICER
    from storage.repo import Repo

    settings = settings_or_exit()
    profile = load_city(settings.city, settings.cities_dir)
    code = opd.strip().upper()
    if profile.opd(code) is None:
        fail(f"unknown OPD {code!r}; known: {', '.join(o.code for o in profile.opds)}")
    db = _open_db(settings)
    with db.unit() as uow:
        role = ROLE_HEAD if head else ROLE_OFFICER
        secret = create_invite(Repo(uow), code, role, db.clock(), days)
    typer.echo(secret)
    typer.echo(
        f"one-time code for {'head' if head else 'officer'} of {code}, valid {days} days: "
        f"the person sends /daftar {secret} to the bot in a private chat",
        err=True,
    )


@officer_app.command("list")
def officer_list(opd: str = typer.Option(None, "--opd", help="Only this OPD")) -> None:
    """List officers, heads and admins with their chat identities."""
    from storage.repo import Repo
    from storage.work_repo import WorkRepo

    settings = settings_or_exit()
    db = _open_db(settings)
    with db.session() as s:
        work = WorkRepo(Repo(s))
        rows = work.staff_people(opd.upper() if opd else None)
        for staff, person in rows:
            assert person.id is not None
            idents = " ".join(f"{i.channel}:{i.external_id}" for i in work.identities(person.id))
            typer.echo(
                f"{person.id}\t{staff.role}\t{staff.opd or '-'}\t"
                f"{person.display_name or '-'}\t{idents}"
            )
    if not rows:
        typer.echo("no officers yet", err=True)


@officer_app.command("remove")
def officer_remove(
    person: int = typer.Option(None, "--person", help="Person id (see `lapor officer list`)"),
    telegram: str = typer.Option(None, "--telegram", help="Telegram user id"),
    whatsapp: str = typer.Option(None, "--whatsapp", help="WhatsApp phone number or user id"),
) -> None:
    """Take the officer/head role away (the person stays a citizen)."""
    from storage.models import ROLE_ADMIN
    from storage.repo import Repo

    if person is None and not telegram and not whatsapp:
        fail("give --person ID, --telegram ID or --whatsapp ID")
    settings = settings_or_exit()
    db = _open_db(settings)
    with db.session() as s:
        repo = Repo(s)
        pid = person
        if pid is None:
            channel, ext = ("telegram", telegram) if telegram else ("whatsapp", whatsapp)
            if channel == "whatsapp":
                ext = _whatsapp_id(ext)
            ident = repo.identity(channel, ext)
            if ident is None and channel == "whatsapp":
                ident = repo.phone_identity(channel, ext)  # by phone, whatever its key
            if ident is None:
                fail(f"no {channel} identity {ext}")
                return
            pid = ident.person_id
        staff = repo.staff(pid)
        if staff is None:
            fail(f"person {pid} is not an officer")
            return
        if staff.role == ROLE_ADMIN:
            fail(f"person {pid} is an admin, not an officer")
            return
        repo.remove_staff(pid)
        _send_menu(repo, settings, pid)  # back to the citizens' menu
    typer.echo(f"person {pid} is no longer {staff.role} of {staff.opd}")


from bot.alerts.cli import broadcast_app  # noqa: E402

app.add_typer(broadcast_app, name="broadcast")


# --- API keys for other city apps ---------------------------------------------------------------
apikey_app = typer.Typer(help="Open311 API keys for other city apps.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


@apikey_app.command("create")
def apikey_create(
    name: str = typer.Option(..., "--name", help="Who uses it, e.g. e-kelurahan"),
) -> None:
    """Create a key; it is printed once (only its hash is stored)."""
    from storage.api_repo import ApiRepo

    name = name.strip()
    if not name or len(name) > 64:
        fail("--name must be 1 to 64 characters")
    settings = settings_or_exit()
    db = _open_db(settings)
    with db.session() as s:
        row, raw = ApiRepo(s).create_key(name)
    typer.echo(raw)
    typer.echo(
        f"key {row.id} ({row.prefix}...) for {name}: send it as ?api_key=... or X-Api-Key; "
        "it is not shown again",
        err=True,
    )


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (id, name, prefix, created, last used, revoked)."""
    from storage.api_repo import ApiRepo

    settings = settings_or_exit()
    db = _open_db(settings)
    with db.session() as s:
        rows = ApiRepo(s).keys()
    for k in rows:
        typer.echo(
            f"{k.id}\t{k.name}\t{k.prefix}...\t{k.created_at:%Y-%m-%d}\t"
            f"{k.last_used_at.strftime('%Y-%m-%d %H:%M') if k.last_used_at else '-'}\t"
            f"{'revoked ' + k.revoked_at.strftime('%Y-%m-%d') if k.revoked_at else 'active'}"
        )
    if not rows:
        typer.echo("no API keys yet", err=True)


@apikey_app.command("revoke")
def apikey_revoke(
    key: str = typer.Argument(..., help="Key id, name (all its keys) or the shown prefix"),
) -> None:
    """Revoke keys; requests with them get 403 from then on."""
    from storage.api_repo import ApiRepo

    settings = settings_or_exit()
    db = _open_db(settings)
    with db.session() as s:
        n = ApiRepo(s).revoke(key.strip())
    if not n:
        fail(f"no active key matches {key!r}", code=1)
    typer.echo(f"revoked {n} key(s)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
