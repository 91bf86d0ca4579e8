"""`lapor broadcast send / status / cancel` (the bot process does the sending)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from storage.alert_models import BC_CANCELLED, BC_QUEUED, BC_SCHEDULED
from storage.alert_repo import AlertRepo
from storage.db import Database
from storage.models import ScheduledJob


def test_send_status_cancel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"DATABASE_URL": url, "CITY": "samarinda", "MEDIA_DIR": str(tmp_path / "media")}
    run = CliRunner().invoke
    res = run(app, ["broadcast", "send", "--text", "x", "--kelurahan", "99.99", "--yes"], env=env)
    assert res.exit_code == 2 and "unknown area" in res.output
    res = run(app, ["broadcast", "send", "--text", "x", "--everyone", "--circle", "1,2,3"], env=env)
    assert res.exit_code == 2
    res = run(
        app,
        ["broadcast", "send", "--text", "Kerja bakti", "--kelurahan", "64.72.05.1013", "--yes"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "Sempaja Timur" in res.output and "#1 queued" in res.output.replace("broadcast ", "")
    res = run(
        app,
        ["broadcast", "send", "--text", "Nanti", "--everyone", "--yes", "--at", "2030-01-01 07:00"],
        env=env,
    )
    assert res.exit_code == 0 and "2029-12-31T23:00:00+00:00" in res.output  # city time, WITA
    with Database(url).session() as s:
        arepo = AlertRepo(s)
        first, second = arepo.broadcast(1), arepo.broadcast(2)
        assert first is not None and second is not None
        assert (first.state, second.state) == (BC_QUEUED, BC_SCHEDULED)
        assert first.texts == {"*": "Kerja bakti"}
        assert s.get(ScheduledJob, second.job_id) is not None
    res = run(app, ["broadcast", "status"], env=env)
    assert "#2 announcement scheduled" in res.output and "#1 announcement queued" in res.output
    res = run(app, ["broadcast", "cancel", "2"], env=env)
    assert res.exit_code == 0
    res = run(app, ["broadcast", "cancel", "2"], env=env)
    assert res.exit_code == 2
    with Database(url).session() as s:
        second = AlertRepo(s).broadcast(2)
        assert second is not None and second.state == BC_CANCELLED
        job = s.get(ScheduledJob, second.job_id)
        assert job is not None and job.cancelled
