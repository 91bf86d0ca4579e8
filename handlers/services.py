"""What handlers may use besides the repository, as typed interfaces.

The composition root (bot/app.py) builds the real ones (city profile, area index, triage,
catalogs, the alerts service) and passes them in; handlers see only these Protocols. Nothing
here reaches the network: slow lookups (the geocoder, media) are made before the
transaction and arrive on the `Inbound` event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from handlers.workdays import FEEDBACK_CLOSE_DAYS, WorkCalendar

if TYPE_CHECKING:
    from handlers.core import Ctx
    from handlers.events import MediaRef
    from storage.alert_models import Broadcast
    from storage.alert_repo import AlertRepo
    from storage.models import Report


class CityInfoLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def timezone(self) -> str: ...


class CityLike(Protocol):
    """The city profile (cities/<name>.toml): OPDs, categories, areas, routing rules.
    Its items (OPD, category, kelurahan, kecamatan) are plain data with named fields."""

    @property
    def city(self) -> CityInfoLike: ...
    @property
    def opds(self) -> Sequence[Any]: ...
    @property
    def categories(self) -> Sequence[Any]: ...
    @property
    def kecamatan(self) -> Sequence[Any]: ...
    @property
    def kelurahan(self) -> Sequence[Any]: ...

    def opd(self, code: str) -> Any: ...
    def category(self, key: str) -> Any: ...
    def kecamatan_by_code(self, code: str) -> Any: ...
    def kelurahan_by_code(self, code: str) -> Any: ...
    def kelurahan_in(self, kecamatan_code: str) -> list[Any]: ...
    def route(self, category_key: str, kecamatan_code: str | None) -> str: ...
    def sla_for(self, category_key: str) -> tuple[int, int]: ...
    def in_bbox(self, lat: float, lon: float) -> bool: ...


class AreaHitLike(Protocol):
    @property
    def kode_kel(self) -> str: ...
    @property
    def nama_kel(self) -> str: ...
    @property
    def kode_kec(self) -> str: ...
    @property
    def nama_kec(self) -> str: ...


class PlaceMatchLike(Protocol):
    @property
    def kind(self) -> str: ...  # kelurahan | kecamatan | landmark
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kode_kec(self) -> str: ...
    @property
    def kode_kel(self) -> str | None: ...
    @property
    def point(self) -> tuple[float, float]: ...


class AreasLike(Protocol):
    """Which kelurahan a point lies in, and fuzzy place names (bot/geo.py)."""

    def locate(self, lat: float, lon: float) -> AreaHitLike | None: ...
    def match_place(self, text: str, limit: int = 3) -> Sequence[PlaceMatchLike]: ...


class SuggestionLike(Protocol):
    @property
    def category(self) -> str: ...
    @property
    def confidence(self) -> float: ...


class TriageLike(Protocol):
    """Category suggestions from a description (bot/triage.py)."""

    def best(self, text: str) -> SuggestionLike | None: ...


class I18nLike(Protocol):
    default: str

    def lang(self, code: str | None) -> str: ...

    def gettext(self, code: str | None, msgid: str) -> str: ...


class Alerts(Protocol):
    """The warnings service as the admins' commands use it (bot/alerts)."""

    def parse_audience(self, data: Mapping[str, Any]) -> Any: ...
    def count_recipients(self, arepo: AlertRepo, audience: Any) -> int: ...
    def describe_audience(self, audience: Any, _: Callable[[str], str]) -> str: ...
    def new_broadcast(
        self,
        arepo: AlertRepo,
        *,
        source: str,
        audience: Any,
        texts: Mapping[str, str],
        photo: MediaRef | None,
        created_by: int | None,
        scheduled_at: datetime | None,
    ) -> Broadcast: ...
    def sent_rate(self, arepo: AlertRepo, broadcast_id: int) -> float: ...


ReportHook = Callable[["Ctx", "Report"], None]
SubmitCheck = Callable[["Ctx", dict[str, Any]], bool]
SeeCheck = Callable[["Ctx", "Report"], bool]


@dataclass
class Hooks:
    """How modules take part in each other's flows, set up by the composition root."""

    # after a citizen's report is made (queue card, SLA track, warnings offer)
    on_report_created: list[ReportHook] = field(default_factory=list)
    # once a draft's category and place are known; True = the hook took over the
    # conversation (the duplicate offer, right after the place)
    after_place: list[SubmitCheck] = field(default_factory=list)
    # before a report is made; True = the hook took over the conversation (duplicate offer)
    before_submit: list[SubmitCheck] = field(default_factory=list)
    # may this person see a report that is not theirs (followers, staff)?
    can_see_report: list[SeeCheck] = field(default_factory=list)


@dataclass
class WorkConfig:
    """Tunables of the officers' workflow."""

    calendar: WorkCalendar
    duplicate_radius_m: float = 50.0
    duplicate_days: int = 30
    proof_minutes: int = 30  # a photo within this time after /selesai is the proof
    feedback_close_days: int = FEEDBACK_CLOSE_DAYS
    digest_hour: int = 7  # local hour of the daily summary to OPD heads


@dataclass
class Services:
    """What handlers may use besides the repository (built by the composition root)."""

    city: CityLike
    areas: AreasLike
    i18n: I18nLike
    clock: Callable[[], datetime]
    work: WorkConfig
    triage: TriageLike | None = None
    hooks: Hooks = field(default_factory=Hooks)
    alerts: Alerts | None = None  # when warnings are on
