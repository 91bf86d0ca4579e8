"""The public web: a map of reports (`/peta`) and a dashboard per OPD (`/dasbor`).

Both pages are plain HTML + a little JavaScript (Leaflet, bundled under `static/leaflet`, or
loaded from `LEAFLET_URL`).  Tiles come from `MAP_TILE_URL`; without it the map still works
(a blank background with the city's kelurahan points as landmarks).  Indonesian by default,
`?lang=en` for English.  Data comes from JSON endpoints next to each page; a report's card is
the Open311 answer for it (`/open311/v2/requests/{code}.json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.i18n import N_
from bot.web.data import city_center, dashboard, due_at, is_overdue, map_point
from bot.web.pages import STATIC, Pages, json_script
from bot.web.warnings import WarningsProvider
from storage.api_repo import ApiRepo, ReportQuery
from storage.db import Database
from storage.models import OPEN_STATUSES, STATUSES, Report

PERIODS = (7, 30, 90, 365)  # days; 0 = everything
STATUS_OPEN, STATUS_OVERDUE = "open", "overdue"  # the map's status filter beyond the stored ones
STATUS_MSGIDS = {
    "baru": N_("New"),
    "diproses": N_("In progress"),
    "selesai": N_("Resolved"),
    "ditolak": N_("Rejected"),
}
CODE_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")

# Words the pages' JavaScript shows (translated into the page's language).
MAP_MSGIDS = [
    N_("New"),
    N_("In progress"),
    N_("Resolved"),
    N_("Rejected"),
    N_("{n} reports on the map"),
    N_("Status history"),
    N_("Handled by"),
    N_("Expected by"),
    N_("Loading…"),
    N_("Could not load the data. Please try again."),
    N_("report received"),
    N_("Close"),
    N_("Category"),
    N_("Place"),
    N_("{n} reports in view"),
    N_("{n} reports here: zoom in"),
    N_("… and {n} more: zoom in to see them."),
]
DASH_MSGIDS = [
    N_("Open"),
    N_("Overdue"),
    N_("Median first response"),
    N_("Median resolution"),
    N_("Within SLA"),
    N_("Reports"),
    N_("Created"),
    N_("Resolved"),
    N_("{n} min"),
    N_("{n} h"),
    N_("{n} days"),
    N_("under 1 min"),
    N_("Whole city"),
    N_("Week of {date}"),
    N_("Show these reports on the map"),
    N_("No reports in this period."),
    N_("Could not load the data. Please try again."),
    N_("Loading…"),
]


def _choice(value: str | None, allowed: set[str], name: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise web.HTTPBadRequest(text=f"{name}: unknown value")
    return value


class PublicWeb:
    def __init__(
        self,
        db: Database,
        services: Any,
        pages: Pages,
        *,
        deadline: Callable[[Report], datetime | None],
        warnings: WarningsProvider,
        tile_url: str | None = None,
        tile_attribution: str = "",
        leaflet_url: str | None = None,
        demo: bool = False,
    ) -> None:
        self.db = db
        self.svc = services
        self.city = services.city
        self.pages = pages
        self.deadline = deadline
        self.warnings = warnings
        self.tile_url = tile_url
        self.tile_attribution = tile_attribution
        self.leaflet_url = (leaflet_url or "/static/leaflet").rstrip("/")
        self.demo = demo

    def install(self, app: web.Application) -> None:
        r = app.router
        for path in ("/peta", "/map"):
            r.add_get(path, self.map_page)
        for path in ("/dasbor", "/dashboard"):
            r.add_get(path, self.dashboard_page)
        r.add_get("/peta/data.json", self.map_data)
        r.add_get("/dasbor/data.json", self.dashboard_data)
        r.add_get("/web/warnings.json", self.warnings_data)
        r.add_static("/static/", STATIC, append_version=False)
        with contextlib.suppress(RuntimeError):  # another feature may own "/"
            r.add_get("/", self.root)

    async def root(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/peta" + (f"?{request.query_string}" if request.query_string else ""))

    # --- pages ----------------------------------------------------------------------------
    def _common(self, request: web.Request, msgids: list[str]) -> tuple[str, dict[str, Any]]:
        lang = self.pages.lang(request.query.get("lang"))
        city = self.city
        min_lon, min_lat, max_lon, max_lat = city.city.bbox
        config = {
            "lang": lang,
            "tz": city.city.timezone,
            "t": self.pages.catalog(lang, msgids),
            "tileUrl": self.tile_url,
            "tileAttribution": self.tile_attribution,
            "bbox": [[min_lat, min_lon], [max_lat, max_lon]],
            "center": city_center(city),
            "categories": {c.key: f"{c.emoji} {c.label(lang)}".strip() for c in city.categories},
            "opds": {o.code: o.short for o in city.opds},
            "kecamatan": {k.code: k.name for k in city.kecamatan},
            "kelurahan": [[k.name, k.centroid[0], k.centroid[1]] for k in city.kelurahan],
        }
        return lang, config

    def _page(self, name: str, lang: str, config: dict[str, Any], title: str) -> web.Response:
        other = "en" if lang == "id" else "id"
        try_chat = html.escape(self.pages.i18n.gettext(lang, N_("Try the chat")))
        body = self.pages.render(
            name,
            lang,
            {
                "lang": lang,
                "other_lang": other,
                "other_lang_label": "English" if other == "en" else "Bahasa Indonesia",
                "city": html.escape(self.city.city.name),
                "title": html.escape(title),
                "config": json_script(config),
                "leaflet": html.escape(self.leaflet_url),
                "filters": self._filters_html(lang),
                "demo_link": f'<a href="/demo?lang={lang}">{try_chat}</a>' if self.demo else "",
            },
        )
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    def _filters_html(self, lang: str) -> str:
        _ = self.pages.i18n.for_lang(lang).gettext
        city = self.city
        everything = html.escape(_("All"))

        def select(name: str, label: str, options: list[tuple[str, str]]) -> str:
            opts = "".join(
                f'<option value="{html.escape(v)}">{html.escape(t)}</option>' for v, t in options
            )
            return (
                f'<label>{html.escape(label)}<select id="f-{name}" name="{name}">'
                f'<option value="">{everything}</option>{opts}</select></label>'
            )

        periods = [(str(d), _("Last {n} days").format(n=d)) for d in PERIODS]
        statuses = [
            (STATUS_OPEN, _("Open")),
            (STATUS_OVERDUE, _("Overdue")),
            *((s, _(STATUS_MSGIDS[s])) for s in STATUSES),
        ]
        return "".join(
            [
                select(
                    "category",
                    _("Category"),
                    [(c.key, f"{c.emoji} {c.label(lang)}".strip()) for c in city.categories],
                ),
                select("opd", _("Agency (OPD)"), [(o.code, o.short) for o in city.opds]),
                select("kecamatan", _("Kecamatan"), [(k.code, k.name) for k in city.kecamatan]),
                select("status", _("Status"), statuses),
                select("days", _("Period"), periods),
            ]
        )

    async def map_page(self, request: web.Request) -> web.Response:
        lang, config = self._common(request, MAP_MSGIDS)
        title = self.pages.i18n.gettext(lang, N_("Reports map"))
        return self._page("map.html", lang, config, title)

    async def dashboard_page(self, request: web.Request) -> web.Response:
        lang, config = self._common(request, DASH_MSGIDS)
        title = self.pages.i18n.gettext(lang, N_("Dashboard per agency"))
        return self._page("dashboard.html", lang, config, title)

    # --- data -----------------------------------------------------------------------------
    def _filters(self, q: Any) -> tuple[ReportQuery, int]:
        city = self.city
        category = _choice(q.get("category"), {c.key for c in city.categories}, "category")
        opd = _choice(q.get("opd"), {o.code for o in city.opds}, "opd")
        kec = _choice(q.get("kecamatan"), {k.code for k in city.kecamatan}, "kecamatan")
        status = _choice(q.get("status"), {*STATUSES, STATUS_OPEN, STATUS_OVERDUE}, "status")
        statuses: list[str] = []
        if status in (STATUS_OPEN, STATUS_OVERDUE):
            statuses = list(OPEN_STATUSES)
        elif status:
            statuses = [status]
        days_raw = q.get("days") or "0"
        if days_raw not in {"0", *(str(d) for d in PERIODS)}:
            raise web.HTTPBadRequest(text="days: use 0, 7, 30, 90 or 365")
        days = int(days_raw)
        start = self.svc.clock() - timedelta(days=days) if days else None
        return (
            ReportQuery(
                categories=[category] if category else [],
                opds=[opd] if opd else [],
                kecamatan=[kec] if kec else [],
                statuses=statuses,
                start=start,
            ),
            days,
        )

    async def map_data(self, request: web.Request) -> web.Response:
        query, _days = self._filters(request.query)
        overdue_only = request.query.get("status") == STATUS_OVERDUE
        now = self.svc.clock()

        def load() -> list[list[Any]]:
            with self.db.session() as s:
                repo = ApiRepo(s)
                rows = repo.map_points(query)
                if overdue_only:  # (…, created_at, id): the dashboard's "Overdue"
                    tracked = repo.tracked_deadlines([int(r[9]) for r in rows])
                    rows = [
                        r
                        for r in rows
                        if is_overdue(r[3], due_at(r[9], r[4], r[8], self.deadline, tracked), now)
                    ]
            return [map_point(r) for r in rows]

        points = await asyncio.to_thread(load)
        return web.json_response({"points": points, "total": len(points)})

    async def dashboard_data(self, request: web.Request) -> web.Response:
        query, days = self._filters(request.query)
        opd = query.opds[0] if query.opds else None
        now = self.svc.clock()
        since = now - timedelta(days=days) if days else None

        def load() -> dict[str, Any]:
            with self.db.session() as s:
                repo = ApiRepo(s)
                rows = repo.dashboard_rows(since, opd)
                tracked = repo.tracked_deadlines([int(r[0]) for r in rows])
            return dashboard(
                rows,
                now=now,
                since=since,
                deadline=self.deadline,
                tracked=tracked,
                opd_names={o.code: o.short for o in self.city.opds},
            )

        return web.json_response(await asyncio.to_thread(load))

    async def warnings_data(self, _request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.warnings))


__all__ = ["CODE_RE", "PublicWeb"]
