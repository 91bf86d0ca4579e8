"""The Open311 GeoReport v2 routes on the bot's HTTP server, under `/open311/v2/`.

Routes (each as `.json` or `.xml`, as the spec says):

- `GET services` – the city profile's categories; `GET services/{code}` – its definition;
- `GET requests` – filters `service_request_id`, `service_code`, `start_date`, `end_date`,
  `status` (spec: `open`/`closed`; also our statuses `baru`, `diproses`, `selesai`,
  `ditolak`), extensions `agency_responsible` (OPD code), `kecamatan` (code), `page`,
  `page_size`, `lang`;
- `GET requests/{id}` – one report with its public `notes` history;
- `POST requests` – create a report from another city app (API key needed). It goes through
  the citizen flow's `submit` (same code, routing, events, hooks and pushes);
- `GET media/{sha256}` – a report's photo (the `media_url` of a request);
- `GET openapi.json` – the OpenAPI 3 description of all of this.

Bad input is a 400 with a clear message (Open311 error format), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.media import MediaError, MediaStore
from bot.open311.openapi import openapi_document
from bot.open311.params import (
    CODE_RE,
    SHA_RE,
    Open311Error,
    draft,
    read_fields,
    report_query,
)
from bot.open311.render import (
    PREFIX,
    Caller,
    DeadlineFn,
    default_deadline,
    dumps,
    error_response,
    request_dict,
    respond,
    service_dict,
    to_xml,
)
from handlers.citizen.flow import submit
from handlers.core import Ctx
from handlers.events import Inbound, MediaRef, Outgoing
from handlers.services import Services
from handlers.text import Gettext
from storage.api_models import ApiKey
from storage.api_repo import ApiRepo, ReportQuery, ReportRow
from storage.db import Database
from storage.models import Report
from storage.people import phone_digits
from storage.repo import Repo
from storage.views import IdentityView, PersonView

log = logging.getLogger(__name__)

CHANNEL = "open311"  # Report.channel of reports created through the API
MEDIA_REFUSED = {
    "too_large": "media: the photo has too many pixels",
    "bad_type": "media: not a JPEG, PNG or WebP photo",
}


class Open311:
    def __init__(
        self,
        db: Database,
        services: Services,
        media: MediaStore,
        *,
        max_page_size: int = 500,
        public_base_url: str | None = None,
        on_outbox: Callable[[], None] = lambda: None,
        deadline: DeadlineFn | None = None,
    ) -> None:
        self.db = db
        self.svc = services
        self.city = services.city
        self.media = media
        self.max_page_size = max_page_size
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.on_outbox = on_outbox
        self.deadline = deadline or default_deadline(self.city)

    def install(self, app: web.Application) -> None:
        fmt = "{fmt:(json|xml)}"
        r = app.router
        r.add_get(f"{PREFIX}/openapi.json", self.openapi)
        r.add_get(f"{PREFIX}/services.{fmt}", self._wrap(self.services))
        r.add_get(f"{PREFIX}/services/{{code:[^/]+?}}.{fmt}", self._wrap(self.service))
        r.add_get(f"{PREFIX}/requests.{fmt}", self._wrap(self.requests))
        r.add_post(f"{PREFIX}/requests.{fmt}", self._wrap(self.create))
        r.add_get(f"{PREFIX}/requests/{{id:[^/]+?}}.{fmt}", self._wrap(self.request))
        r.add_get(f"{PREFIX}/media/{{sha:[^/.]+}}", self.photo)

    def _wrap(self, fn: Callable[[web.Request, str], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            fmt = request.match_info.get("fmt", "json")
            try:
                result: web.StreamResponse = await fn(request, fmt)
                return result
            except Open311Error as exc:
                return error_response(fmt, exc.status, exc.description)
            except web.HTTPException:
                raise
            except Exception:
                log.exception("open311: %s %s failed", request.method, request.path)
                return error_response(fmt, 500, "internal error")

        return handler

    # --- common -------------------------------------------------------------------------------
    async def _caller(self, request: web.Request, params: Any | None = None) -> Caller:
        params = params if params is not None else request.query
        raw = request.headers.get("X-Api-Key") or params.get("api_key") or ""
        key: ApiKey | None = None
        if raw:
            key = await asyncio.to_thread(self._check_key, str(raw))
            if key is None:
                raise Open311Error(403, "api_key: unknown or revoked key")
        lang = str(params.get("lang") or self.svc.i18n.default)
        lang = lang if lang in ("id", "en") else self.svc.i18n.default
        jurisdiction = params.get("jurisdiction_id")
        if jurisdiction and str(jurisdiction) != self.city.city.key:
            raise Open311Error(400, f"jurisdiction_id: this endpoint serves {self.city.city.key!r}")
        base = self.public_base_url or f"{request.scheme}://{request.host}"
        return Caller(key=key, base_url=base, lang=lang)

    def _check_key(self, raw: str) -> ApiKey | None:
        with self.db.session() as s:
            return ApiRepo(s).check_key(raw)

    # --- services ------------------------------------------------------------------------------
    async def services(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        items = [service_dict(self.city, c, caller.lang) for c in self.city.categories]
        return respond(fmt, "services", "service", items)

    async def service(self, request: web.Request, fmt: str) -> web.Response:
        await self._caller(request)
        code = request.match_info["code"]
        if self.city.category(code) is None:
            raise Open311Error(404, f"service_code {code[:40]!r} not found")
        definition = {"service_code": code, "attributes": []}
        if fmt == "xml":
            return web.Response(
                body=to_xml("service_definitions", "service_definition", [definition]),
                content_type="application/xml",
            )
        return web.json_response(definition, dumps=dumps)

    def _gettext(self, caller: Caller) -> Gettext:
        return lambda msgid: self.svc.i18n.gettext(caller.lang, msgid)

    # --- reading requests ----------------------------------------------------------------------
    async def requests(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        query = report_query(request.query, self.svc.clock(), self.max_page_size)
        rows: list[ReportRow] = []
        deadlines: dict[int, datetime] = {}
        if query.start and query.end and query.end < query.start:
            pass  # an empty period
        else:
            rows, deadlines = await asyncio.to_thread(self._find, query)
        _ = self._gettext(caller)
        items = [
            request_dict(self.city, r, caller, self.deadline, _, deadlines.get(r.report.id or 0))
            for r in rows
        ]
        resp = respond(fmt, "service_requests", "request", items)
        resp.headers["X-Page"] = str(query.page)
        resp.headers["X-Page-Size"] = str(query.page_size)
        return resp

    def _find(self, query: ReportQuery) -> tuple[list[ReportRow], dict[int, datetime]]:
        with self.db.session() as s:
            repo = ApiRepo(s)
            rows = repo.find_reports(query)
            ids = [r.report.id for r in rows if r.report.id is not None]
            tracked = repo.tracked_deadlines(ids)
        return rows, tracked

    async def request(self, request: web.Request, fmt: str) -> web.Response:
        caller = await self._caller(request)
        code = request.match_info["id"]
        if not CODE_RE.match(code):
            raise Open311Error(400, "service_request_id: codes look like PLU-2611-0042")
        rows, deadlines = await asyncio.to_thread(
            self._find, ReportQuery(codes=[code], page_size=1)
        )
        if not rows:
            raise Open311Error(404, f"service request {code!r} not found")
        row = rows[0]
        return respond(
            fmt,
            "service_requests",
            "request",
            [
                request_dict(
                    self.city,
                    row,
                    caller,
                    self.deadline,
                    self._gettext(caller),
                    deadlines.get(row.report.id or 0),
                )
            ],
        )

    async def photo(self, request: web.Request) -> web.StreamResponse:
        sha = request.match_info["sha"]
        if not SHA_RE.match(sha):
            raise web.HTTPNotFound()

        def find() -> Any:
            with self.db.session() as s:
                return ApiRepo(s).photo_by_sha(sha)

        photo = await asyncio.to_thread(find)
        if photo is None:
            raise web.HTTPNotFound()
        path = self.media.root / photo.path
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(
            path, headers={"Content-Type": photo.mime, "Cache-Control": "public, max-age=86400"}
        )

    # --- creating requests -----------------------------------------------------------------------
    async def create(self, request: web.Request, fmt: str) -> web.Response:
        fields, media = await read_fields(request, self.media.max_bytes)
        params: dict[str, str] = dict(request.query)
        params.update(fields)
        caller = await self._caller(request, params)
        if caller.key is None:
            raise Open311Error(403, "api_key: a key is needed to create requests")
        new = draft(params, self.city, self.svc.areas)
        ref: MediaRef | None = None
        if media:
            try:
                ref = await asyncio.to_thread(self.media.store_image, media)
            except MediaError as exc:
                raise Open311Error(
                    400, MEDIA_REFUSED.get(exc.code, MEDIA_REFUSED["bad_type"])
                ) from None
        account = str(params.get("account_id") or "")[:100]
        report, outs = await asyncio.to_thread(self._create, caller.key.name, account, new, ref)
        if outs:
            self.on_outbox()
        return respond(
            fmt,
            "service_requests",
            "request",
            [
                {
                    "service_request_id": report.code,
                    "service_notice": None,
                    "account_id": account or None,
                }
            ],
        )

    def _create(
        self, key_name: str, account: str, draft: dict[str, Any], photo: MediaRef | None
    ) -> tuple[Report, list[Outgoing]]:
        if photo is not None:
            draft["photos"] = [
                {"sha256": photo.sha256, "mime": photo.mime, "size": photo.size, "path": photo.path}
            ]
        with self.db.unit() as uow:
            repo = Repo(uow)
            ident, person = self._api_identity(repo, key_name, account)
            event = Inbound(channel=CHANNEL, external_id=ident.external_id, kind="text")
            ctx = Ctx(repo=repo, svc=self.svc, event=event, identity=ident, person=person)
            report = submit(ctx, draft)
            # The confirmation goes to the reporter's chats (if linked), not to the API.
            confirmation = [o for o in ctx.out if o.channel == CHANNEL]
            outs = [o for o in ctx.out if o.channel != CHANNEL]
            for ident_row in repo.identities_of(person.id):
                if ident_row.channel == CHANNEL:
                    continue
                for o in confirmation:
                    outs.append(
                        Outgoing(
                            channel=ident_row.channel,
                            address=ident_row.address,
                            identity_id=ident_row.id,
                            reply=o.reply,
                            priority=o.priority,
                            kind="status",
                            meta=o.meta,
                            report_id=report.id,
                        )
                    )
            uow.send(outs)
        return report, outs

    def _api_identity(
        self, repo: Repo, key_name: str, account: str
    ) -> tuple[IdentityView, PersonView]:
        """The (inactive) identity of an API account; its person is the chat user that
        `account_id` names (`telegram:123`, `whatsapp:62812...`, `web:...`) if there is one."""
        external = f"{key_name}:{account or '-'}"[:128]
        found = repo.who(CHANNEL, external)
        if found is not None:
            return found
        person_id = self._account_person(repo, account)
        ident, person, _new = repo.register_identity(
            CHANNEL,
            external,
            external,
            language=self.svc.i18n.default,
            person_id=person_id,
            active=False,  # nothing is ever sent to the API "chat"
        )
        return ident, person

    def _account_person(self, repo: Repo, account: str) -> int | None:
        """The person `account_id` names: a chat user who wrote (`telegram:123`, `web:…`), or
        for `whatsapp:<phone>` whoever has that number, made if nobody does yet (they then
        hear about the report by the approved template: they never wrote)."""
        channel, _, ext = account.partition(":")
        if not ext or channel == CHANNEL:
            return None
        if channel == "whatsapp":
            phone = phone_digits(ext)
            if phone is None:
                raise Open311Error(400, "account_id: whatsapp:<phone with country code>")
            _ident, person, _new = repo.whatsapp_identity_for_phone(
                phone, language=self.svc.i18n.default
            )
            return person.id
        linked = repo.who(channel, ext)
        return linked[1].id if linked else None

    # --- OpenAPI ----------------------------------------------------------------------------------
    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.city, self.max_page_size), dumps=dumps)
