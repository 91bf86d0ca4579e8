"""Geocoding through geopy against the fake Nominatim (bot/geocode.py, tests/fakes/nominatim.py)."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from bot.geocode import Geocoder, GeoResult
from tests.fakes.nominatim import FakeNominatim, place

PALU_BBOX = (119.70, -1.00, 120.10, -0.60)
GOR = place(-0.8957, 119.8700, "Taman GOR, Besusu Tengah, Palu Timur, Kota Palu", place_id=7)
ADDRESS = "Jalan Moh. Hatta, Besusu Tengah, Palu Timur, Kota Palu, Sulawesi Tengah"


@pytest.fixture
def fake() -> Iterator[FakeNominatim]:
    with FakeNominatim(
        places={"taman gor palu": GOR, "pasar inpres manonda": place(-0.9, 119.85, "Manonda")},
        addresses={(-0.896, 119.870): ADDRESS},
    ) as server:
        yield server


def _geocoder(fake: FakeNominatim, **kw) -> Geocoder:
    return Geocoder(fake.url, "lapor-warga-tests/0.1", viewbox=PALU_BBOX, **kw)


def test_geocode_asks_nominatim_like_geopy_does(fake: FakeNominatim) -> None:
    result = _geocoder(fake).geocode("Taman GOR Palu")
    assert result == GeoResult(-0.8957, 119.87, GOR["display_name"])
    (seen,) = fake.requests
    assert seen.path == "/search"
    assert seen.params["q"] == "taman gor palu"
    assert seen.params["countrycodes"] == "id"
    assert seen.params["viewbox"] == "119.7,-1.0,120.1,-0.6"  # lon1,lat1,lon2,lat2


def test_cache_hit_does_not_call_the_server(fake: FakeNominatim) -> None:
    geocoder = _geocoder(fake)
    first = geocoder.geocode("Taman GOR Palu")
    assert fake.count() == 1
    # same query after normalisation: case, spaces, trailing punctuation
    assert geocoder.geocode("  taman   GOR palu. ") == first
    assert geocoder.geocode("TAMAN GOR PALU") == first
    assert fake.count() == 1
    # "not found" is cached too
    assert geocoder.geocode("tempat yang tidak ada") is None
    assert geocoder.geocode("Tempat yang tidak ada") is None
    assert fake.count() == 2
    assert geocoder.geocode("") is None and fake.count() == 2


def test_lru_cache_evicts_the_oldest(fake: FakeNominatim) -> None:
    geocoder = _geocoder(fake, cache_size=1)
    geocoder.geocode("taman gor palu")
    geocoder.geocode("pasar inpres manonda")  # evicts the first
    geocoder.geocode("pasar inpres manonda")
    assert fake.count() == 2
    geocoder.geocode("taman gor palu")
    assert fake.count() == 3


def test_reverse_gives_a_readable_address_and_is_cached(fake: FakeNominatim) -> None:
    geocoder = _geocoder(fake)
    assert geocoder.reverse(-0.8957, 119.8701) == ADDRESS
    assert geocoder.reverse(-0.8957, 119.8701) == ADDRESS
    assert fake.count("/reverse") == 1
    assert float(fake.requests[0].params["lat"]) == -0.8957
    assert geocoder.reverse(0.5, 118.0) is None  # Nominatim: "Unable to geocode"


def test_down_server_gives_none_and_is_not_cached(
    fake: FakeNominatim, caplog: pytest.LogCaptureFixture
) -> None:
    geocoder = _geocoder(fake, cooldown_seconds=0)
    fake.down = True
    with caplog.at_level(logging.WARNING, logger="bot.geocode"):
        assert geocoder.geocode("taman gor palu") is None
        assert geocoder.reverse(-0.8957, 119.8701) is None
    assert "failed" in caplog.text
    fake.down = False
    assert geocoder.geocode("taman gor palu") is not None  # asked again, not a cached None
    assert fake.count() == 3


def test_slow_server_times_out_to_none(fake: FakeNominatim) -> None:
    fake.delay = 1.0
    geocoder = _geocoder(fake, timeout=0.2)
    assert geocoder.geocode("taman gor palu") is None


def test_connection_refused_gives_none() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    geocoder = Geocoder(f"http://127.0.0.1:{port}", "tests", timeout=1)
    assert geocoder.geocode("taman gor palu") is None
    assert geocoder.reverse(-0.9, 119.87) is None


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        Geocoder("ftp://example", "ua")
    with pytest.raises(ValueError, match="user agent"):
        Geocoder("http://127.0.0.1:1", " ")


def test_at_most_one_request_per_second_across_kinds_and_threads(fake: FakeNominatim) -> None:
    geocoder = _geocoder(fake, min_delay_seconds=0.1)  # asking for faster is ignored
    queries = ["taman gor palu", "pasar inpres manonda", "tidak ada"]
    threads = [threading.Thread(target=geocoder.geocode, args=(q,)) for q in queries]
    threads.append(threading.Thread(target=geocoder.reverse, args=(-0.8957, 119.8701)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    times = sorted(fake.times())
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.95, gaps
