"""The `lapor` command as an operator uses it (real subprocesses)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.procs import free_port

ROOT = Path(__file__).resolve().parent.parent


def lapor(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    tmp: Path,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_"))}
    full_env.update({"DATABASE_URL": f"sqlite:///{tmp / 'cli.db'}", "MEDIA_DIR": str(tmp / "m")})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=tmp,
        env=full_env,
        timeout=timeout,
    )


def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    res = lapor("run", env={"HTTP_PORT": "not-a-port"}, tmp=tmp_path)
    assert res.returncode == 2
    assert "HTTP_PORT" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = lapor("run", env={"TELEGRAM_BOT_TOKEN": "nonsense"}, tmp=tmp_path)
    assert res.returncode == 2 and "TELEGRAM_BOT_TOKEN" in res.stderr
    assert "nonsense" not in res.stderr  # secrets are not echoed


TELEGRAM_WEBHOOK = {
    "TELEGRAM_BOT_TOKEN": "123456:abcdefghijklmnop",
    "TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram",
    "TELEGRAM_WEBHOOK_SECRET": "s3cret",
}


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://lapor:pw@127.0.0.1:{closed}/lapor"}, "DATABASE_URL"),
        ({"SENSOR_TOKENS": "not json"}, "SENSOR_TOKENS"),
        ({**TELEGRAM_WEBHOOK, "TELEGRAM_WEBHOOK_PATH": "no-slash"}, "TELEGRAM_WEBHOOK_PATH"),
        ({"WHATSAPP_WEBHOOK_PATH": "/wa hook"}, "WHATSAPP_WEBHOOK_PATH"),
        ({"LEAFLET_URL": "not a url"}, "LEAFLET_URL"),
        ({"MAP_TILE_URL": "tile.openstreetmap.org/{z}/{x}/{y}.png"}, "MAP_TILE_URL"),
        ({"MAP_TILE_URL": "https://tile.openstreetmap.org/tile.png"}, "MAP_TILE_URL"),
        ({"GEOCODER_URL": "nominatim.example"}, "GEOCODER_URL"),
        ({"CITY": "atlantis"}, "CITY"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    env = {k: v.replace("{closed}", str(free_port())) for k, v in env.items()}
    res = lapor("run", env={"HTTP_PORT": "0", **env}, tmp=tmp_path, timeout=60)
    assert res.returncode == 2, res.stderr[-3000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lapor: setting {setting}: "), lines[:40]
    assert "pw@" not in lines[0]  # a password in a URL is not echoed
    if setting == "CITY":
        assert "palu" in lines[0] and "samarinda" in lines[0]  # the names to choose from


def test_no_channel_says_what_to_set(tmp_path: Path) -> None:
    res = lapor("run", env={"DEMO_ENABLED": "false"}, tmp=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "TELEGRAM_BOT_TOKEN" in res.stderr and "BotFather" in res.stderr


def test_triage_and_locate_csv(tmp_path: Path) -> None:
    res = lapor("triage", "--csv", "-", stdin="text\njalan berlubang parah\n\n", tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["category"] == "jalan_rusak" and rows[0]["opd"] == "PUPR"
    res = lapor(
        "locate",
        "--csv",
        "-",
        stdin="lat,lon,note\n-0.8917,119.8707,a\n-6.2,106.8,b\n",
        tmp=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["nama_kel"] == "Besusu Tengah" and rows[0]["in_city"] == "true"
    assert rows[0]["note"] == "a"
    assert rows[1]["in_city"] == "false"


def test_city_check_and_area_import(tmp_path: Path, shared_data: Path) -> None:
    res = lapor("city", "check", tmp=tmp_path)
    assert res.returncode == 0 and "kelurahan: 46" in res.stdout
    res = lapor("areas", "import", str(shared_data / "palu_kelurahan.geojson"), tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "loaded 46 kelurahan polygons" in res.stdout
    # Samarinda's file for Palu: every feature refused, clearly.
    res = lapor("areas", "import", str(shared_data / "samarinda_kelurahan.geojson"), tmp=tmp_path)
    assert res.returncode == 1 and "refused" in res.stdout


def test_db_upgrade_and_downgrade(tmp_path: Path) -> None:
    assert lapor("db", "upgrade", tmp=tmp_path).returncode == 0
    assert lapor("db", "downgrade", "base", tmp=tmp_path).returncode == 0
    assert lapor("db", "upgrade", tmp=tmp_path).returncode == 0


def test_admin_add_requires_a_numeric_telegram_id(tmp_path: Path) -> None:
    res = lapor("admin", "add", "--telegram", "abc", tmp=tmp_path)
    assert res.returncode == 2 and "numeric" in res.stderr
    res = lapor("admin", "add", "--telegram", "4242", tmp=tmp_path)
    assert res.returncode == 0 and "admin" in res.stdout
