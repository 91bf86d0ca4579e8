"""City profiles (bot/city.py, cities/*.toml, scripts/build_city_profile.py)."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest

from bot.city import CITIES_DIR, CityProfileError, check_city, load_city, parse_city
from bot.tools import city_check_summary

CATEGORY_OPD = {
    "jalan_rusak": "PUPR",
    "drainase": "PUPR",
    "sampah": "DLH",
    "lampu_jalan": "DISHUB",
    "lalu_lintas": "DISHUB",
    "ketertiban": "SATPOLPP",
    "air_bersih": "PDAM",
    "kependudukan": "DISDUKCAPIL",
    "bencana": "BPBD",
    "kebakaran": "DAMKAR",
    "kesehatan": "DINKES",
    "sosial": "DINSOS",
    "pendidikan": "DISDIK",
    "pohon_taman": "DLH",
    "lainnya": "DISKOMINFO",
}
CITIES = {"palu": ("72.71", 8, 46), "samarinda": ("64.72", 10, 59)}


def _generator():
    path = Path(__file__).resolve().parent.parent / "scripts" / "build_city_profile.py"
    spec = importlib.util.spec_from_file_location("build_city_profile", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key", sorted(CITIES))
def test_shipped_profiles_are_complete_and_clean(key: str) -> None:
    code, n_kec, n_kel = CITIES[key]
    p = load_city(key)
    assert check_city(p) == []
    assert p.city.code == code and p.city.timezone == "Asia/Makassar"
    assert len(p.kecamatan) == n_kec and len(p.kelurahan) == n_kel
    assert [c.key for c in p.categories] == list(CATEGORY_OPD)  # same keys, display order
    assert {c.key: c.opd for c in p.categories} == CATEGORY_OPD
    assert {o.code for o in p.opds} == set(CATEGORY_OPD.values()) | {"DISPERKIM"}
    for cat in p.categories:
        assert len(cat.button_label("id")) <= 24 and len(cat.button_label("en")) <= 24
    assert p.sla.response_workdays == 3 and p.sla.resolution_workdays == 5
    assert len(p.landmarks) >= 4 and p.overrides


def test_keyword_lists_stay_on_one_line() -> None:
    """Another engineer tunes only the `keywords = [...]` lines: each must be one line."""
    for path in CITIES_DIR.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines() if ln.startswith("keywords")]
        assert lines and all(re.fullmatch(r"keywords = \[.*\]", ln) for ln in lines), path


@pytest.mark.parametrize("key", sorted(CITIES))
def test_areas_are_the_official_list_with_source_centroids(key: str, shared_data: Path) -> None:
    code = CITIES[key][0]
    p = load_city(key)
    with (shared_data / "wilayah_palu_samarinda.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["kode_kota"] == code]
    assert {(k.code, k.name, k.kecamatan) for k in p.kelurahan} == {
        (r["kode_kel"], r["nama_kel"], r["kode_kec"]) for r in rows
    }
    assert {(k.code, k.name) for k in p.kecamatan} == {(r["kode_kec"], r["nama_kec"]) for r in rows}
    # the generated block in the file is exactly what the generator produces today
    block = _generator().build_areas(
        shared_data / "wilayah_palu_samarinda.csv", shared_data / f"{key}_kelurahan.geojson", code
    )
    assert block in (CITIES_DIR / f"{key}.toml").read_text(encoding="utf-8")


def test_generator_write_replaces_only_the_marked_block(tmp_path: Path, shared_data: Path) -> None:
    gen = _generator()
    target = tmp_path / "palu.toml"
    target.write_text((CITIES_DIR / "palu.toml").read_text(encoding="utf-8"), encoding="utf-8")
    before = target.read_text(encoding="utf-8")
    gen.main(
        [
            str(shared_data / "wilayah_palu_samarinda.csv"),
            str(shared_data / "palu_kelurahan.geojson"),
            "--city-code",
            "72.71",
            "--write",
            str(target),
        ]
    )
    assert target.read_text(encoding="utf-8") == before  # idempotent
    with pytest.raises(SystemExit, match="no rows"):
        gen.build_areas(
            shared_data / "wilayah_palu_samarinda.csv",
            shared_data / "palu_kelurahan.geojson",
            "99.99",
        )


def test_route_applies_overrides_then_category_default() -> None:
    palu = load_city("palu")
    assert palu.route("pohon_taman", "72.71.02") == "DISPERKIM"  # override (Palu Barat)
    assert palu.route("pohon_taman", "72.71.01") == "DLH"  # other kecamatan: default
    assert palu.route("pohon_taman", None) == "DLH"  # no location yet
    assert palu.route("drainase", "72.71.07") == "BPBD"
    assert palu.route("jalan_rusak", "72.71.07") == "PUPR"  # overrides are per category
    assert palu.route("no_such_category", "72.71.01") == "DISKOMINFO"  # falls back to lainnya
    smd = load_city("samarinda")
    assert smd.route("drainase", "64.72.08") == "BPBD"
    assert smd.route("drainase", "72.71.07") == "PUPR"  # Palu's kecamatan means nothing here
    assert smd.route("air_bersih", "64.72.01") == "PDAM"


def test_lookups_sla_and_bbox() -> None:
    p = load_city("palu")
    assert p.opd("PDAM") is not None and p.opd("NOPE") is None
    assert p.category("kebakaran") is not None and p.category("x") is None
    kel = p.kelurahan_by_code("72.71.01.1004")
    assert kel is not None and kel.name == "Besusu Barat"
    kec = p.kecamatan_by_code(kel.kecamatan)
    assert kec is not None and kec.name == "Palu Timur"
    assert p.sla_for("bencana") == (1, 2)
    assert p.sla_for("sampah") == (3, 5)
    assert p.in_bbox(-0.9, 119.87) and not p.in_bbox(119.87, -0.9)


MINIMAL = """
[city]
key = "demo"
name = "Kota Demo"
code = "99.01"
prefix = "DMO"
province = "Demo"
province_code = "99"
timezone = "Asia/Makassar"
bbox = [100.0, -1.0, 101.0, 0.0]

[sla]
response_workdays = 3
resolution_workdays = 5

[[opd]]
code = "PUPR"
name = "Dinas Pekerjaan Umum"
short = "PUPR"

[[opd]]
code = "DISKOMINFO"
name = "Dinas Kominfo"
short = "Kominfo"

[[category]]
key = "jalan_rusak"
emoji = "🕳️"
label_id = "Jalan rusak"
label_en = "Damaged road"
opd = "PUPR"
keywords = ["jalan"]

[[category]]
key = "lainnya"
emoji = "📝"
label_id = "Lainnya"
label_en = "Other"
opd = "DISKOMINFO"

[[kecamatan]]
code = "99.01.01"
name = "Satu"

[[kelurahan]]
code = "99.01.01.1001"
name = "Satu Barat"
kecamatan = "99.01.01"
centroid = [-0.5, 100.5]
"""


def _write(tmp_path: Path, text: str, key: str = "demo") -> Path:
    path = tmp_path / f"{key}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_third_city_is_just_a_file(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL)
    p = load_city("demo", tmp_path)
    assert p.route("jalan_rusak", "99.01.01") == "PUPR"
    assert p.city.max_centroid_km == 3.0 and p.landmarks == [] and p.overrides == []


OVERRIDE_BAD = '[[override]]\ncategory = "jalan_rusak"\nkecamatan = ["99.01.09"]\nopd = "DLH"\n'
BAD_TZ = ('timezone = "Asia/Makassar"\n', "")
BROKEN = [
    (
        ('opd = "PUPR"\nkeywords', 'opd = "PUPRX"\nkeywords'),
        r"category\[0\] \(jalan_rusak\)\.opd: unknown OPD 'PUPRX'",
    ),
    (BAD_TZ, r"city\.timezone: Field required"),
    (("Asia/Makassar", "Asia/Palu"), r"city\.timezone: .*unknown time zone"),
    (("[100.0, -1.0, 101.0, 0.0]", "[101.0, -1.0, 100.0, 0.0]"), r"city\.bbox: .*min < max"),
    (("[100.0, -1.0, 101.0, 0.0]", '"everywhere"'), r"city\.bbox"),
    (('prefix = "DMO"', 'prefix = "dmo-1"'), r"city\.prefix"),
    (
        ("centroid = [-0.5, 100.5]", "centroid = [100.5, -0.5]"),
        r"kelurahan\[0\].*centroid: .*outside city\.bbox",
    ),
    (
        ('kecamatan = "99.01.01"', 'kecamatan = "99.01.02"'),
        r"kelurahan\[0\].*unknown kecamatan '99\.01\.02'",
    ),
    (
        ('code = "99.01.01.1001"', 'code = "72.71.01.1001"'),
        r"kelurahan\[0\].*not under city code 99\.01",
    ),
    (('label_id = "Lainnya"', 'label_id = ""'), r"category\[1\] \(lainnya\)\.label_id: empty"),
    (
        ('short = "PUPR"', 'short = "PUPR"\ncolour = "red"'),
        r"opd\[0\]\.colour: Extra inputs are not permitted",
    ),
    (
        ("[sla]", OVERRIDE_BAD + "\n[sla]"),
        r"override\[0\]\.opd: unknown OPD 'DLH'.*override\[0\]\.kecamatan: unknown",
    ),
    (
        ("[sla]", '[[opd]]\ncode = "PUPR"\nname = "Lagi"\nshort = "Lagi"\n\n[sla]'),
        r"opd\.code: duplicate 'PUPR'",
    ),
    (('key = "demo"', 'key = "other"'), r"city\.key: is 'other', expected 'demo'"),
    (("[sla]", "[sla"), r"invalid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), BROKEN)
def test_broken_profiles_are_rejected_naming_file_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in MINIMAL
    path = _write(tmp_path, MINIMAL.replace(old, new))
    with pytest.raises(CityProfileError) as info:
        load_city("demo", tmp_path)
    message = str(info.value)
    assert message.startswith(str(path) + ": "), message
    assert re.search(expected, message), message


def test_missing_file_and_bad_key(tmp_path: Path) -> None:
    with pytest.raises(CityProfileError, match=r"nowhere\.toml: city profile not found"):
        load_city("nowhere", tmp_path)
    with pytest.raises(CityProfileError, match="bad city key"):
        load_city("../etc/passwd", tmp_path)


def test_check_city_lists_every_problem_and_summary_reports_them(tmp_path: Path) -> None:
    broken = MINIMAL.replace('opd = "DISKOMINFO"\n\n[[kecamatan]]', 'opd = "NONE"\n\n[[kecamatan]]')
    broken = broken.replace("centroid = [-0.5, 100.5]", "centroid = [5.0, 100.5]")
    profile = parse_city(broken, "inline")
    problems = check_city(profile)
    assert len(problems) == 2
    ok, text = city_check_summary(profile)
    assert not ok and "2 problem(s)" in text and "unknown OPD 'NONE'" in text
    ok, text = city_check_summary(load_city("palu"))
    assert ok
    assert "kelurahan: 46" in text and "kecamatan: 8" in text and "categories: 15" in text
    assert "no problems found" in text
