"""Schemathesis against the running bot (`lapor run`, one process): every operation of the
served OpenAPI document, generated inputs, responses checked against the document
(no 5xx, documented status codes and content types, response schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from bot.city import load_city
from storage.db import Database, upgrade
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import make_key, seed_reports

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("open311")
    url = f"sqlite:///{tmp / 'lapor.db'}"
    upgrade(url)
    db = Database(url)
    seed_reports(db, load_city("palu"), 40, now=datetime.now(UTC))
    key = make_key(db)
    db.dispose()
    env = web_only_env(url, tmp)
    port = env["HTTP_PORT"]
    with BotProcess(env, log_path=tmp / "bot.log") as proc:
        proc.wait_ready(30)
        yield f"http://127.0.0.1:{port}", key


def test_every_operation_conforms_to_the_openapi_document(server: tuple[str, str]) -> None:
    base, key = server
    schema = schemathesis.openapi.from_url(f"{base}/open311/v2/openapi.json")
    schema.config.base_url = base  # type: ignore[misc]
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == 5
    for op in operations:
        for headers in ({}, {"X-Api-Key": key}):
            run_operation(op, base, headers)


def run_operation(op: object, base: str, headers: dict[str, str]) -> None:
    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())  # type: ignore[attr-defined]
    def check(case: schemathesis.Case) -> None:
        # A POST must also name a place inside the city, which a schema cannot say: only
        # there may schema-valid data be refused (400), everything else is checked.
        excluded = [positive_data_acceptance] if case.method == "POST" else []
        case.call_and_validate(headers=headers, base_url=base, excluded_checks=excluded)

    check()
