"""The bot's HTTP surface under slow and hostile clients: the real `lapor run` process.

A raw socket stands in for a slow link: a body sent in two writes with a pause between
arrives in two TCP pieces, and must be read whole. Bad numbers in paths and queries are a
404/400 (never a 500), and a malformed request is one WARNING line in the log.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from storage.db import Database, utcnow
from tests.e2e import running_bot, wait_until, web_only_env
from tests.fakes.procs import BotProcess
from tests.fakes.telegram_api import FakeBotAPI
from tests.test_open311 import make_key
from tests.test_sensor import box, cap_xml

pytestmark = pytest.mark.e2e

UID = 7001
SECRET = "webhook-s3cret"
SENSOR_TOKEN = "sensor-t0ken"
CAP_KEY = "cap-k3y"
SEMPAJA_TIMUR = (-0.43835, 117.1638)  # centroid of the kelurahan 64.72.05.1013, Samarinda


def _exchange(port: int, head: bytes, pieces: list[bytes], pause: float) -> tuple[int, bytes]:
    """Send `head`, then each piece as its own TCP segment with `pause` s between; the answer
    (status, body) once the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head + pieces[0])
        for piece in pieces[1:]:
            time.sleep(pause)
            try:
                sock.sendall(piece)
            except OSError:  # the server answered (e.g. 413) and closed before the rest
                break
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post_in_two_pieces(
    port: int, path: str, body: bytes, pause: float = 0.3, **headers: str
) -> tuple[int, bytes]:
    """POST with Content-Length, the body in two TCP pieces (what `curl --limit-rate` does)."""
    head = _head(path, {"Content-Length": str(len(body)), **headers})
    half = len(body) // 2
    return _exchange(port, head, [body[:half], body[half:]], pause)


def post_chunked(port: int, path: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    """POST with `Transfer-Encoding: chunked` (no Content-Length), 64 KiB chunks."""
    head = _head(path, {"Transfer-Encoding": "chunked", **headers})
    step = 65536
    chunks = [
        b"%x\r\n%s\r\n" % (len(c), c)
        for c in (body[i : i + step] for i in range(0, len(body), step))
    ]
    return _exchange(port, head, [*chunks, b"0\r\n\r\n"], 0.01)


def test_bodies_arriving_in_two_pieces_are_read_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lapor.db'}"
    api = FakeBotAPI().start_in_thread()
    env = {
        "CITY": "samarinda",
        "TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "SENSOR_TOKENS": json.dumps({"benanga": SENSOR_TOKEN}),
        "CAP_API_KEY": CAP_KEY,
        "DEMO_ENABLED": "true",
        "SCHEDULER_ENABLED": "false",
    }
    try:
        with running_bot(url, tmp_path, api=api, **env) as bot:
            port = int(bot.proc.env["HTTP_PORT"])
            wait_until(lambda: bool(api.calls("setWebhook")), what="setWebhook")
            tg = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
            update = json.dumps({"update_id": 1, **api.text_update(UID, "/bantuan")}).encode()
            assert post_in_two_pieces(port, "/telegram", update, **tg)[0] == 200
            api.wait_for_sync(lambda: len(api.sent_to(UID)) >= 1, 15)

            sensor = {"Authorization": f"Bearer {SENSOR_TOKEN}"}
            reading = json.dumps({"level_m": 3.2, "ts": utcnow().isoformat()}).encode()
            status, answer = post_in_two_pieces(
                port, "/sensors/benanga/readings", reading, **sensor
            )
            assert status == 202, answer
            assert json.loads(answer)["accepted"] is True

            alert = cap_xml("BPBD-SLOW-1", box(*SEMPAJA_TIMUR))
            status, answer = post_in_two_pieces(port, "/cap", alert, **{"X-API-Key": CAP_KEY})
            assert status in (200, 201), answer
            assert json.loads(answer)["identifier"] == "BPBD-SLOW-1"

            db = Database(url)
            key = make_key(db)
            db.dispose()
            report = json.dumps(
                {
                    "service_code": "sampah",
                    "description": "Sampah menumpuk di tepi jalan",
                    "address_id": "64.72.05.1013",
                }
            ).encode()
            status, answer = post_in_two_pieces(
                port,
                "/open311/v2/requests.json",
                report,
                **{"X-Api-Key": key, "Content-Type": "application/json"},
            )
            assert status == 200, answer
            assert json.loads(answer)[0]["service_request_id"].startswith("SMD-")

            message = {
                "sid": "0123456789abcdef",
                "persona": "citizen",
                "id": "slowlink0001",
                "kind": "text",
                "text": "/bantuan",
            }
            status, answer = post_in_two_pieces(
                port,
                "/demo/api/send",
                json.dumps(message).encode(),
                **{"Content-Type": "application/json"},
            )
            assert status == 200, answer
            assert json.loads(answer) == {"ok": True, "new": True}

            # without a Content-Length the cap still holds, as the body arrives
            too_big = b'{"level_m": 3.3, "pad": "' + b"x" * 20_000 + b'"}'
            assert post_chunked(port, "/sensors/benanga/readings", too_big, **sensor)[0] == 413
            huge = b'{"update_id": 1, "pad": "' + b"x" * 1_100_000 + b'"}'
            assert post_chunked(port, "/telegram", huge, **tg)[0] == 413
            assert bot.proc.is_running()
            assert "Traceback" not in bot.proc.logs()
    finally:
        api.stop()


def test_numbers_out_of_range_in_paths_and_queries_are_404_or_400(
    db_url: str, tmp_path: Path
) -> None:
    proc = BotProcess(web_only_env(db_url, tmp_path), log_path=tmp_path / "bot.log")
    with proc:
        proc.wait_ready(30)
        base = proc.health_url.removesuffix("/healthz")

        def status(path: str) -> int:
            try:
                with urllib.request.urlopen(base + path, timeout=10) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        for path in (
            "/warnings/%C2%B2.xml",  # "²": str.isdigit() says yes, int() says no
            "/warnings/99999999999999999999999.xml",
            "/warnings/2147483648.xml",  # one past PostgreSQL's INTEGER (the id columns)
            "/warnings/9223372036854775808.xml",  # one past its BIGINT
        ):
            assert status(path) == 404, path
        assert status("/warnings/1.xml") == 404  # a number that fits, but no such warning
        messages = "/demo/api/messages?sid=0123456789abcdef&persona=citizen&after="
        for after in ("99999999999999999999999", "2147483648", "%C2%B2", "%D9%A1", "-1"):
            assert status(messages + after) == 400, after
        assert status(messages + "2147483647") == 200
        requests = "/open311/v2/requests.json?page="
        for page in ("99999999999999999999999", "%D9%A1", "%C2%B2"):
            assert status(requests + page) == 400, page
        assert proc.is_running()
        logs = proc.logs()
    assert "Traceback" not in logs and " ERROR " not in logs, logs[-3000:]


def test_a_malformed_request_is_one_warning_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lapor.db'}"
    env = web_only_env(url, tmp_path)
    proc = BotProcess(env, log_path=tmp_path / "bot.log")
    with proc:
        proc.wait_ready(30)
        port = int(env["HTTP_PORT"])
        before = len(proc.logs().splitlines())
        for garbage in (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        ):
            code, _ = _exchange(port, garbage, [b""], 0)
            assert code == 400
        wait_until(lambda: len(proc.logs().splitlines()) >= before + 2, 10, "the log lines")
        assert proc.is_running()
        new = proc.logs().splitlines()[before:]
    assert len(new) == 2, new
    assert all(" WARNING " in line and "bad HTTP request" in line for line in new), new
