"""A fake Nominatim server (http.server in a thread, 127.0.0.1, free port).

Answers `/search` and `/reverse` in Nominatim's `format=json` shape from small dicts, records
every request (path, query parameters, monotonic time) and can pretend to be down (503) or
slow.  Use as a context manager:

    with FakeNominatim(places={"masjid agung palu": PLACE}) as fake:
        geocoder = Geocoder(fake.url, "test-agent")
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    path: str
    params: dict[str, str]
    at: float  # time.monotonic()


def place(lat: float, lon: float, display_name: str, place_id: int = 1) -> dict[str, Any]:
    """One result in Nominatim's JSON format (coordinates are strings, as upstream)."""
    return {
        "place_id": place_id,
        "licence": "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright",
        "osm_type": "node",
        "osm_id": 1000 + place_id,
        "lat": f"{lat:.7f}",
        "lon": f"{lon:.7f}",
        "class": "place",
        "type": "suburb",
        "place_rank": 20,
        "importance": 0.3,
        "addresstype": "suburb",
        "name": display_name.split(",")[0],
        "display_name": display_name,
        "boundingbox": [
            f"{lat - 0.01:.7f}",
            f"{lat + 0.01:.7f}",
            f"{lon - 0.01:.7f}",
            f"{lon + 0.01:.7f}",
        ],
    }


class FakeNominatim:
    def __init__(
        self,
        places: dict[str, dict[str, Any]] | None = None,
        addresses: dict[tuple[float, float], str] | None = None,
    ) -> None:
        self.places = {k.lower(): v for k, v in (places or {}).items()}  # query -> place
        self.addresses = dict(addresses or {})  # (lat, lon) rounded to 3 decimals -> address
        self.requests: list[Seen] = []
        self.down = False  # answer 503
        self.delay = 0.0  # seconds to wait before answering
        # called (in the server's thread) while a request waits for its answer; what it
        # raises is kept in `probe_errors` (e.g. "the caller holds a transaction open")
        self.probe: Any = None
        self.probe_errors: list[str] = []
        # when set, requests wait until the test opens the gate (`gate.set()`)
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeNominatim:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeNominatim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- inspection ----------------------------------------------------------------------
    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def times(self) -> list[float]:
        with self._lock:
            return [r.at for r in self.requests]

    # --- answers -------------------------------------------------------------------------
    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if self.down:
            return 503, {"error": "Service Unavailable"}
        if path == "/search":
            found = self.places.get(params.get("q", "").strip().lower())
            return 200, [found] if found else []
        if path == "/reverse":
            try:
                key = (round(float(params["lat"]), 3), round(float(params["lon"]), 3))
            except (KeyError, ValueError):
                return 400, {"error": "Parameter lat/lon missing"}
            address = self.addresses.get(key)
            if address is None:
                return 200, {"error": "Unable to geocode"}
            return 200, place(key[0], key[1], address)
        return 404, {"error": "not found"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.requests.append(Seen(parts.path, params, time.monotonic()))
                if fake.probe is not None:
                    try:
                        fake.probe()
                    except Exception as exc:
                        fake.probe_errors.append(f"{parts.path}: {exc}")
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.gate is not None:
                    fake.gate.wait(30)
                status, body = fake._answer(parts.path, params)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
