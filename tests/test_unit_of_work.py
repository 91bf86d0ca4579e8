"""The unit of work: one batch's reads made once, its writes held until one ordered flush.

On SQLite and on PostgreSQL. `begin` reads every sender with its person and conversation in
one statement; conversations, new reports (with events, photos, tracks) and outgoing
messages wait in memory until `flush`, which writes each kind with one statement; a commit
with held writes is an error; savepoints are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from handlers.core import begin
from handlers.events import Inbound, Outgoing, Reply
from storage.db import Database
from storage.models import OutboxItem, Photo, Report, ReportEvent
from storage.repo import Repo
from storage.unit import SavepointRefused, UnflushedWork, UnitOfWork
from storage.work_models import ReportTrack

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on `db` inside the block."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, clock=lambda: NOW)
    yield database
    database.dispose()


def _identity(repo: Repo, channel: str, ext: str) -> int:
    ident, _person, _new = repo.get_or_create_identity(channel, ext, ext, language="id")
    return ident.id


def _report(person_id: int, code: str) -> Report:
    return Report(
        code=code,
        person_id=person_id,
        channel="telegram",
        category="jalan_rusak",
        description="Jalan berlubang",
        opd="PUPR",
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_batch_reads_its_senders_once_and_holds_conversation_writes(db: Database) -> None:
    with db.unit() as uow:
        repo = Repo(uow)
        ana = _identity(repo, "telegram", "100")
        budi = _identity(repo, "telegram", "200")
        other = _identity(repo, "whatsapp", "100")  # same external id, other channel
        repo.save_conversation(ana, "report.description", {"category": "jalan_rusak"})
        repo.save_conversation(budi, "report.location", {"photos": []})
        repo.save_conversation(other, "sub.pick", {"page": 2})

    with db.unit() as uow:
        repo = Repo(uow)
        keys = [("telegram", "100"), ("telegram", "200"), ("telegram", "300")]
        with counting(db) as reads:
            repo.read_senders(keys)
        assert len(reads) == 1

        with counting(db) as during:
            ident, _p, is_new = repo.get_or_create_identity("telegram", "100", "100", language="id")
            assert (ident.id, is_new) == (ana, False)
            assert repo.conversation_state(ana) == (
                "report.description",
                {"category": "jalan_rusak"},
            )
            assert repo.who("telegram", "200") is not None
            data = {"photos": [{"sha256": "ab"}]}
            repo.save_conversation(budi, "report.photos", data)
            data["photos"].append({"sha256": "cd"})  # after saving: not what is stored
            repo.clear_conversation(ana)
            assert repo.conversation_state(ana) is None
            assert repo.conversation_state(budi) == (
                "report.photos",
                {"photos": [{"sha256": "ab"}]},
            )
        assert during == [], "the batch's reads were made; its writes wait for the flush"

        with counting(db) as newcomer:
            cita, _p, is_new = repo.get_or_create_identity("telegram", "300", "300", language="id")
            assert is_new
            assert repo.conversation_state(cita.id) is None
            repo.save_conversation(cita.id, "report.category", {})
        assert len(newcomer) in (2, 3)  # INSERT person, INSERT identity (per row on SQLite)

        with counting(db) as writes:
            uow.flush()
        # One DELETE; an UPDATE for the row the batch saw, an INSERT for the newcomer.
        assert len(writes) == 3

    with db.session() as s:
        repo = Repo(s)
        assert repo.conversation_state(ana) is None
        assert repo.conversation_state(budi) == ("report.photos", {"photos": [{"sha256": "ab"}]})
        assert repo.conversation_state(cita.id) == ("report.category", {})
        assert repo.conversation_state(other) == ("sub.pick", {"page": 2})  # untouched


def test_committing_with_held_writes_is_an_error_and_writes_nothing(db: Database) -> None:
    with db.unit() as uow:
        ana = _identity(Repo(uow), "telegram", "100")
    with pytest.raises(UnflushedWork), db.session() as s:
        Repo(s).save_conversation(ana, "report.category", {})  # and no flush
    with pytest.raises(UnflushedWork), db.session() as s:
        UnitOfWork.of(s).send(
            [Outgoing(channel="telegram", address="100", reply=Reply(text="lost?"))]
        )
    with db.session() as s:
        repo = Repo(s)
        assert repo.conversation_state(ana) is None
        assert repo.outbox_counts() == {}


def test_a_unit_of_work_refuses_savepoints(db: Database) -> None:
    with pytest.raises(SavepointRefused), db.unit() as uow:
        Repo(uow).read_senders([("telegram", "1")])
        uow.session.begin_nested()


def test_a_rolled_back_batch_writes_nothing(db: Database) -> None:
    with db.unit() as uow:
        ana = _identity(Repo(uow), "telegram", "100")
    with pytest.raises(RuntimeError), db.unit() as uow:
        repo = Repo(uow)
        repo.read_senders([("telegram", "100")])
        repo.save_conversation(ana, "report.category", {})
        uow.flush()
        raise RuntimeError("a handler failed after the flush")
    with db.session() as s:
        assert Repo(s).conversation_state(ana) is None


def test_counter_numbers_are_reserved_once_and_the_rest_given_back(db: Database) -> None:
    """Report codes: a batch takes a block of numbers in one UPDATE and returns the unused
    ones at its flush, so codes stay consecutive across batches."""
    with db.unit() as uow:
        assert Repo(uow).next_sequence("report:PLU:2611") == 1  # a batch of one
    with db.unit() as uow:
        repo = Repo(uow)
        repo.read_senders([("telegram", str(n)) for n in range(10)])
        with counting(db) as seen:
            got = [repo.next_sequence("report:PLU:2611") for _ in range(3)]
        assert got == [2, 3, 4]
        assert len(seen) == 1  # one reservation for the batch
        assert repo.next_sequence("report:SMD:2611") == 1  # a new counter, created
    with db.unit() as uow:
        repo = Repo(uow)
        repo.read_senders([("telegram", "1")])  # a block of one, used up
        assert repo.next_sequence("report:PLU:2611") == 5
        assert repo.next_sequence("report:PLU:2611") == 6  # another block, right after
    with db.unit() as uow:
        assert Repo(uow).next_sequence("report:PLU:2611") == 7
        assert Repo(uow).next_sequence("report:SMD:2611") == 2


def test_first_time_senders_of_a_batch_are_created_together(db: Database) -> None:
    """`begin` creates a batch's newcomers with two statements in all; each handler still
    sees its sender as new once, paired with the right person."""
    svc: Any = SimpleNamespace(i18n=SimpleNamespace(default="id"))

    def ev(user: str, name: str) -> Inbound:
        return Inbound(
            channel="telegram",
            external_id=user,
            chat_id=f"chat-{user}",
            kind="text",
            text="halo",
            display_name=name,
        )

    with db.unit() as uow:
        known, _p, _new = Repo(uow).get_or_create_identity(
            "telegram", "100", "chat-100", language="id", display_name="Ana"
        )
    events = [ev("100", "Ana"), ev("200", "Budi"), ev("300", "Cita"), ev("200", "Budi")]
    with db.unit() as uow:
        repo = Repo(uow)
        with counting(db) as seen:
            begin(repo, svc, events)
        # Read the senders; insert the people; insert the identities. (SQLite cannot
        # promise the order of a multi-row RETURNING, so there SQLAlchemy inserts row by
        # row: cheap in-process.)
        if db.engine.dialect.name == "postgresql":
            assert len(seen) == 3
        else:
            assert 3 <= len(seen) <= 5
        with counting(db) as during:
            results = [
                repo.get_or_create_identity(
                    e.channel, e.external_id, f"chat-{e.external_id}", language="id"
                )
                for e in events
            ]
        assert during == []
        assert [new for _i, _p, new in results] == [False, True, True, False]
        assert results[0][0].id == known.id
        budi, cita = results[1], results[2]
        assert budi[1].display_name == "Budi" and cita[1].display_name == "Cita"
        assert budi[0].person_id == budi[1].id and cita[0].person_id == cita[1].id
        assert budi[0].address == "chat-200"
    with db.session() as s:
        found = Repo(s).who("telegram", "300")
        assert found is not None
        ident, person = found
        assert ident.id == cita[0].id and person.display_name == "Cita"
        assert ident.address == "chat-300" and person.language == "id"


def test_a_conversation_the_batch_never_read_is_still_written(db: Database) -> None:
    """A handler may set the state of an identity outside the batch's senders (an officer's):
    the batch does not know whether its row exists, so it tries an UPDATE, else INSERTs."""
    with db.unit() as uow:
        repo = Repo(uow)
        had_row = _identity(repo, "telegram", "400")
        no_row = _identity(repo, "telegram", "500")
        repo.save_conversation(had_row, "proof.wait", {"code": "PLU-2611-0001"})
    with db.unit() as uow:
        repo = Repo(uow)
        repo.read_senders([("telegram", "100")])  # neither of them
        repo.save_conversation(had_row, "proof.wait", {"code": "PLU-2611-0002"})
        repo.save_conversation(no_row, "proof.wait", {"code": "PLU-2611-0003"})
    with db.session() as s:
        repo = Repo(s)
        assert repo.conversation_state(had_row) == ("proof.wait", {"code": "PLU-2611-0002"})
        assert repo.conversation_state(no_row) == ("proof.wait", {"code": "PLU-2611-0003"})


def test_new_reports_are_held_readable_and_written_at_the_flush(db: Database) -> None:
    """A new report has its id at once (buttons name it), reads see it with its event,
    photo and track, nothing is written before the flush, and the flush writes each table
    with one statement."""
    with db.unit() as uow:
        pid = Repo(uow).get_or_create_identity("telegram", "1", "1", language="id")[0].person_id
    with db.unit() as uow:
        repo = Repo(uow)
        repo.read_senders([("telegram", str(n)) for n in range(3)])
        with counting(db) as allocating:
            first = repo.add_report(_report(pid, "PLU-2611-0001"))
            second = repo.add_report(_report(pid, "PLU-2611-0002"))
        assert first.id is not None and second.id == first.id + 1
        assert len(allocating) == 1  # the ids of the batch, reserved at once
        with counting(db) as holding:
            for r in (first, second):
                assert r.id is not None
                repo.add_event(ReportEvent(report_id=r.id, kind="created", created_at=NOW))
                repo.add_photo(
                    Photo(
                        report_id=r.id,
                        sha256="a" * 64,
                        path="aa/a.jpg",
                        mime="image/jpeg",
                        size=10,
                        role="report",
                        created_at=NOW,
                    )
                )
                repo.work.add_track(
                    ReportTrack(
                        report_id=r.id,
                        cycle_started_at=NOW,
                        response_due_at=NOW,
                        resolution_due_at=NOW,
                    )
                )
            assert repo.report(first.id) is first
            assert repo.report_by_code("plu-2611-0002") is second
            assert [e.kind for e in repo.events(first.id)] == ["created"]
            assert len(repo.photos(first.id, role="report")) == 1
            assert repo.work.track(first.id) is not None
            first.description = "Jalan berlubang dalam"  # a change before the flush is kept
        assert holding == []
        with counting(db) as writes:
            uow.flush()
        inserts = [w for w in writes if w.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 4  # report, report_event, photo, report_track
    with db.session() as s:
        reports = list(s.exec(select(Report).order_by(Report.id)))  # type: ignore[arg-type]
        assert [r.code for r in reports] == ["PLU-2611-0001", "PLU-2611-0002"]
        assert reports[0].description == "Jalan berlubang dalam"
        assert len(list(s.exec(select(ReportEvent)))) == 2
        assert len(list(s.exec(select(Photo)))) == 2
        assert len(list(s.exec(select(ReportTrack)))) == 2


def test_outgoing_messages_go_out_with_one_statement_skipping_blocked_people(
    db: Database,
) -> None:
    with db.unit() as uow:
        repo = Repo(uow)
        ok = _identity(repo, "telegram", "1")
        blocked = _identity(repo, "telegram", "2")
    with db.unit() as uow:
        Repo(uow).deactivate_identity(blocked)
    with db.unit() as uow:
        reply = Reply(text="Halo")
        uow.send(
            [
                Outgoing(channel="telegram", address="1", identity_id=ok, reply=reply),
                Outgoing(channel="telegram", address="2", identity_id=blocked, reply=reply),
                Outgoing(channel="telegram", address="-100", reply=reply, report_id=None),
            ]
        )
        with counting(db) as writes:
            uow.flush()
        assert len([w for w in writes if "INSERT" in w.upper()]) == 1
    with db.session() as s:
        rows = list(s.exec(select(OutboxItem)))
        assert sorted(r.address for r in rows) == ["-100", "1"]
        assert {r.created_at for r in rows} == {NOW}  # the unit's clock, not the wall clock
