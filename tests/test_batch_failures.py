"""A batch of updates is decided into one unit of work: an update that fails is left out and
the batch runs again without it, so the others are committed once and nothing of the failing
one is written. Through the real core and the inbox worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from sqlmodel import select

from bot.inbox import Inbox, InboxWorker
from handlers.core import Ctx
from handlers.events import Choice, Inbound, MediaRef, Outgoing, Reply
from storage.models import InboxItem, OutboxItem, Report
from storage.repo import Repo
from tests.core_harness import CoreHarness
from tests.test_officer_flow import OFFICER, code_in, file_report, make_staff, officer_core


class CoreChannel:
    """Stored payloads are plain `Inbound` events (what an adapter would have read)."""

    name = "telegram"
    transport: Any = None

    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        data = dict(payload)
        if data.get("photo"):
            data["photo"] = MediaRef(**data["photo"])
        return [Inbound(**data)]


async def run_batch(core: CoreHarness, events: list[Inbound]) -> None:
    """Store the events as one delivery and let the worker handle them until done."""
    inbox = Inbox(core.db)
    items = [(f"{ev.external_id}-{i}", asdict(ev), ev.external_id) for i, ev in enumerate(events)]
    assert await inbox.accept_many("telegram", items) == len(items)
    worker = InboxWorker(
        core.db, inbox, {"telegram": CoreChannel()}, core.core.run_batch, core.core.apology,
        lambda: None,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        with core.db.session() as s:
            if not Repo(s).inbox_pending():
                break
        await asyncio.sleep(0.02)
    stop.set()
    await task


def outbox_to(core: CoreHarness, address: str) -> list[OutboxItem]:
    with core.db.session() as s:
        rows = s.exec(select(OutboxItem).where(OutboxItem.address == address))
        return sorted(rows, key=lambda r: r.id or 0)


def item_errors(core: CoreHarness) -> dict[str, str | None]:
    with core.db.session() as s:
        return {i.sender_key or "": i.error for i in s.exec(select(InboxItem))}


def ev(user: str, **kw: Any) -> Inbound:
    return Inbound(channel="telegram", external_id=user, chat_id=user, **kw)


async def test_a_failing_report_does_not_take_an_officers_proof_photo_with_it(
    db_url: str,
) -> None:
    """A citizen's Send fails in a hook after the report and its photo were made; in the same
    batch an officer sends the proof photo of another report. The proof is stored once and
    its citizen told; the failing report is not written at all and its sender gets an
    apology after the last attempt."""
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    code = code_in(file_report(core, user="100"))
    core.text(OFFICER, f"/selesai {code} Sampah sudah diangkut")  # the proof window opens
    core.text("101", "/lapor")
    core.choose("101", "cat:sampah")
    core.text("101", "Sampah menumpuk di depan pasar sudah seminggu")
    core.location("101", -0.8892, 119.8658)
    core.photo("101", sha="c" * 64)
    core.choose("101", "ph:done")
    assert core.step("101") == "report.review"

    def boom(ctx: Ctx, report: Report) -> None:
        raise RuntimeError("a hook failed after the report and its photo were made")

    core.svc.hooks.on_report_created.append(boom)
    proof = MediaRef(sha256="b" * 64, mime="image/jpeg", size=1000, path="bb/b.jpg")
    await run_batch(core, [ev("101", kind="choice", choice="rv:send"),
                           ev(OFFICER, kind="photo", photo=proof)])  # fmt: skip

    with core.db.session() as s:
        repo = Repo(s)
        rid = repo.report_by_code(code).id  # type: ignore[union-attr]
        assert [p.sha256 for p in repo.photos(rid, role="proof")] == ["b" * 64]
        assert [r.code for r in s.exec(select(Report))] == [code]  # 101's report: not written
    assert any(r.payload.get("photo") for r in outbox_to(core, "100"))  # the proof, pushed
    errors = item_errors(core)
    assert errors[OFFICER] is None
    assert "a hook failed" in (errors["101"] or "")
    assert "Maaf" in outbox_to(core, "101")[-1].payload["text"]  # apology after the retries
    assert core.step("101") == "report.review"  # the draft is still there to try again


async def test_more_of_a_long_list_is_sent_once_when_its_batch_runs_again(db_url: str) -> None:
    """'Lainnya' (the next page of a long list) is a choice the core answers in the update's
    own transaction: a batch that runs again because another update failed writes it once.
    Only the person the list was sent to can page it."""
    core = CoreHarness(db_url)

    def fails(ctx: Ctx) -> None:
        raise RuntimeError("handler bug")

    core.registry.commands["boom"] = fails
    core.text("300", "/start")
    core.text("302", "/start")
    choices = tuple(Choice(f"kel:{i}", f"Kelurahan {i}") for i in range(15))
    with core.db.unit() as uow:
        ident = Repo(uow).who("telegram", "300")
        assert ident is not None
        reply = Reply("Pilih kelurahan", choices=choices)
        uow.send([Outgoing("telegram", "300", reply, identity_id=ident[0].id)])
    [listed] = [r for r in outbox_to(core, "300") if len(r.payload["choices"]) == 15]

    await run_batch(core, [ev("300", kind="choice", choice=f"more:{listed.id}:1"),
                           ev("301", kind="command", command="boom", text="/boom"),
                           ev("302", kind="choice", choice=f"more:{listed.id}:1")])  # fmt: skip

    pages = [r for r in outbox_to(core, "300") if r.id != listed.id and r.payload.get("page")]
    assert len(pages) == 1
    assert pages[0].payload["page"] == 1 and len(pages[0].payload["choices"]) == 15
    assert "tidak berlaku" in outbox_to(core, "302")[-1].payload["text"]  # not their list
    assert "handler bug" in (item_errors(core)["301"] or "")
