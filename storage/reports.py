"""Reports (laporan), their events and photos.

A report made in this transaction is held by the unit of work until its flush; the reads
here see it (and its events and photos) as if it were written.
"""

from __future__ import annotations

from sqlmodel import col, select

from storage.models import Photo, Report, ReportEvent
from storage.unit import UnitStore


class ReportRepo(UnitStore):
    def next_sequence(self, name: str) -> int:
        """The next number of a named counter (report codes), without gaps."""
        return self.uow.number(name)

    def add_report(self, report: Report) -> Report:
        """A new report; it gets its id now and is written at the flush."""
        return self.uow.add_report(report)

    def save_report(self, report: Report) -> None:
        """Changes to a report: held ones are written as they are at the flush."""
        if report.id not in self.uow.reports:
            self._s.add(report)

    def report(self, report_id: int) -> Report | None:
        held = self.uow.reports.get(report_id)
        return held if held is not None else self._s.get(Report, report_id)

    def report_by_code(self, code: str) -> Report | None:
        code = code.upper()
        for held in self.uow.reports.values():
            if held.code == code:
                return held
        return self._s.exec(select(Report).where(Report.code == code)).first()

    def reports_of(self, person_id: int, limit: int = 10) -> list[Report]:
        q = (
            select(Report)
            .where(Report.person_id == person_id)
            .order_by(col(Report.created_at).desc(), col(Report.id).desc())
            .limit(limit)
        )
        return list(self._s.exec(q))

    def add_event(self, event: ReportEvent) -> ReportEvent:
        return self.uow.add_event(event)

    def events(self, report_id: int, *, include_internal: bool = False) -> list[ReportEvent]:
        found: list[ReportEvent] = []
        if report_id not in self.uow.reports:
            q = select(ReportEvent).where(ReportEvent.report_id == report_id)
            if not include_internal:
                q = q.where(ReportEvent.internal == False)  # noqa: E712
            found = list(self._s.exec(q.order_by(col(ReportEvent.created_at), col(ReportEvent.id))))
        held = [e for e in self.uow.events_of(report_id) if include_internal or not e.internal]
        return found + sorted(held, key=lambda e: e.created_at)

    def add_photo(self, photo: Photo) -> Photo:
        return self.uow.add_photo(photo)

    def photos(self, report_id: int, role: str | None = None) -> list[Photo]:
        found: list[Photo] = []
        if report_id not in self.uow.reports:
            q = select(Photo).where(Photo.report_id == report_id)
            if role:
                q = q.where(Photo.role == role)
            found = list(self._s.exec(q.order_by(col(Photo.id))))
        held = [p for p in self.uow.photos_of(report_id) if not role or p.role == role]
        return found + held
