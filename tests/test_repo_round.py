"""A round of updates (one transaction for many senders): reads up front, writes held back.

`Repo.begin_round` reads every sender with its person and conversation in one statement;
conversation writes wait in memory until `Repo.end_round`, which writes them together. On
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from storage.db import Database
from storage.repo import Repo


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
    database = Database(db_url)
    yield database
    database.dispose()


def _identity(repo: Repo, channel: str, ext: str) -> int:
    ident, _person, _new = repo.get_or_create_identity(channel, ext, ext, language="id")
    return ident.id


def test_a_round_reads_its_senders_once_and_holds_conversation_writes(db: Database) -> None:
    with db.session() as s:
        repo = Repo(s)
        ana = _identity(repo, "telegram", "100")
        budi = _identity(repo, "telegram", "200")
        other = _identity(repo, "whatsapp", "100")  # same external id, other channel
        repo.save_conversation(ana, "report.description", {"category": "jalan_rusak"})
        repo.save_conversation(budi, "report.location", {"photos": []})
        repo.save_conversation(other, "sub.pick", {"page": 2})

    with db.session() as s:
        repo = Repo(s)
        keys = [("telegram", "100"), ("telegram", "200"), ("telegram", "300")]
        with counting(db) as reads:
            repo.begin_round(keys)
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
        assert during == [], "a round's reads and conversation writes wait for end_round"

        # A newcomer: created now (person + identity), known to have no conversation.
        with counting(db) as newcomer:
            cita, _p, is_new = repo.get_or_create_identity("telegram", "300", "300", language="id")
            assert is_new
            assert repo.conversation_state(cita.id) is None
            repo.save_conversation(cita.id, "report.category", {})
        assert len(newcomer) == 2  # INSERT person, INSERT identity

        with counting(db) as writes:
            repo.end_round()
        # One DELETE; an UPDATE for the row the round saw, an INSERT for the newcomer.
        assert len(writes) == 3

    with db.session() as s:
        repo = Repo(s)
        assert repo.conversation_state(ana) is None
        assert repo.conversation_state(budi) == (
            "report.photos",
            {"photos": [{"sha256": "ab"}]},
        )
        assert repo.conversation_state(cita.id) == ("report.category", {})
        assert repo.conversation_state(other) == ("sub.pick", {"page": 2})  # untouched


def test_without_a_round_conversation_writes_go_out_at_once(db: Database) -> None:
    with db.session() as s:
        repo = Repo(s)
        ana = _identity(repo, "telegram", "100")
        with counting(db) as seen:
            repo.save_conversation(ana, "report.category", {})
        assert seen, "outside a round a save is written immediately"
        repo.end_round()  # no round: nothing to do
    with db.session() as s:
        assert Repo(s).conversation_state(ana) == ("report.category", {})


def test_a_rolled_back_round_writes_nothing(db: Database) -> None:
    with db.session() as s:
        ana = _identity(Repo(s), "telegram", "100")
    try:
        with db.session() as s:
            repo = Repo(s)
            repo.begin_round([("telegram", "100")])
            repo.save_conversation(ana, "report.category", {})
            repo.end_round()
            raise RuntimeError("a handler failed after the round was written")
    except RuntimeError:
        pass
    with db.session() as s:
        assert Repo(s).conversation_state(ana) is None


def test_a_round_reserves_counter_numbers_once_and_gives_back_the_rest(db: Database) -> None:
    """Report codes: a round takes a block of numbers in one UPDATE and returns the unused
    ones before its commit, so codes stay consecutive across rounds and without rounds."""
    with db.session() as s:
        assert Repo(s).next_sequence("report:PLU:2611") == 1  # no round: one by one
    with db.session() as s:
        repo = Repo(s)
        repo.begin_round([("telegram", str(n)) for n in range(10)])
        with counting(db) as seen:
            got = [repo.next_sequence("report:PLU:2611") for _ in range(3)]
        assert got == [2, 3, 4]
        assert len(seen) == 1  # one reservation for the round
        assert repo.next_sequence("report:SMD:2611") == 1  # a new counter, created
        repo.end_round()
    with db.session() as s:
        repo = Repo(s)
        repo.begin_round([("telegram", "1")])  # a block of one, used up
        assert repo.next_sequence("report:PLU:2611") == 5
        assert repo.next_sequence("report:PLU:2611") == 6  # another block, right after
        repo.end_round()
    with db.session() as s:
        assert Repo(s).next_sequence("report:PLU:2611") == 7
        assert Repo(s).next_sequence("report:SMD:2611") == 2


def test_first_time_senders_of_a_round_are_created_together(db: Database) -> None:
    """The core's begin_round creates a round's newcomers with two statements in all; each
    handler still sees its sender as new once, paired with the right person."""
    from types import SimpleNamespace

    from handlers.core import begin_round
    from handlers.events import Inbound

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

    with db.session() as s:
        known, _p, _new = Repo(s).get_or_create_identity(
            "telegram", "100", "chat-100", language="id", display_name="Ana"
        )
    events = [ev("100", "Ana"), ev("200", "Budi"), ev("300", "Cita"), ev("200", "Budi")]
    with db.session() as s:
        repo = Repo(s)
        with counting(db) as seen:
            begin_round(repo, svc, events)
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
        repo.end_round()
    with db.session() as s:
        found = Repo(s).who("telegram", "300")
        assert found is not None
        ident, person = found
        assert ident.id == cita[0].id and person.display_name == "Cita"
        assert ident.address == "chat-300" and person.language == "id"


def test_a_conversation_the_round_never_read_is_still_written(db: Database) -> None:
    """A handler may set the state of an identity outside the round's senders (e.g. an
    officer's): the round does not know whether its row exists, so it writes it as outside
    a round (UPDATE, else INSERT)."""
    with db.session() as s:
        repo = Repo(s)
        had_row = _identity(repo, "telegram", "400")
        no_row = _identity(repo, "telegram", "500")
        repo.save_conversation(had_row, "proof.wait", {"code": "PLU-2611-0001"})
    with db.session() as s:
        repo = Repo(s)
        repo.begin_round([("telegram", "100")])  # neither of them
        repo.save_conversation(had_row, "proof.wait", {"code": "PLU-2611-0002"})
        repo.save_conversation(no_row, "proof.wait", {"code": "PLU-2611-0003"})
        repo.end_round()
    with db.session() as s:
        repo = Repo(s)
        assert repo.conversation_state(had_row) == ("proof.wait", {"code": "PLU-2611-0002"})
        assert repo.conversation_state(no_row) == ("proof.wait", {"code": "PLU-2611-0003"})
