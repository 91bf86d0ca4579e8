"""Operator tools (wired into the CLI): batch point lookup and city profile checks."""

from __future__ import annotations

import csv
import math
from typing import TextIO

from bot.city import CityProfile, check_city
from bot.geo import AreaIndex
from bot.triage import Triage

LOCATE_COLUMNS = ("kode_kel", "nama_kel", "kode_kec", "nama_kec", "in_city")


def _coordinate(value: str | None, limit: float) -> float | None:
    try:
        number = float((value or "").strip().replace(",", "."))
    except ValueError:
        return None
    return number if math.isfinite(number) and abs(number) <= limit else None


def locate_csv(inp: TextIO, out: TextIO, index: AreaIndex) -> int:
    """Add kelurahan/kecamatan columns to a CSV with `lat,lon` columns; return rows written.

    Other columns are kept.  A row with a missing or bad coordinate, or a point outside the
    city, gets empty area fields and in_city=false.  Raises ValueError only when the header
    has no lat/lon columns.
    """
    reader = csv.DictReader(inp)
    fields = list(reader.fieldnames or [])
    if "lat" not in fields or "lon" not in fields:
        raise ValueError(f"input needs 'lat' and 'lon' columns, has {fields}")
    writer = csv.DictWriter(
        out,
        fieldnames=fields + [c for c in LOCATE_COLUMNS if c not in fields],
        extrasaction="ignore",
    )
    writer.writeheader()
    rows = 0
    for row in reader:
        lat = _coordinate(row.get("lat"), 90)
        lon = _coordinate(row.get("lon"), 180)
        hit = index.locate(lat, lon) if lat is not None and lon is not None else None
        row = {k: ("" if v is None else v) for k, v in row.items() if k is not None}
        row.update(
            kode_kel=hit.kode_kel if hit else "",
            nama_kel=hit.nama_kel if hit else "",
            kode_kec=hit.kode_kec if hit else "",
            nama_kec=hit.nama_kec if hit else "",
            in_city="true" if hit else "false",
        )
        writer.writerow(row)
        rows += 1
    return rows


def city_check_summary(profile: CityProfile) -> tuple[bool, str]:
    """(ok, text): counts of what the profile holds and the problems `check_city` found."""
    problems = check_city(profile)
    c = profile.city
    lines = [
        f"{c.name} ({c.key}, {c.code}, prefix {c.prefix}, {c.timezone})",
        f"  OPD: {len(profile.opds)}",
        f"  categories: {len(profile.categories)}",
        f"  kecamatan: {len(profile.kecamatan)}",
        f"  kelurahan: {len(profile.kelurahan)}",
        f"  landmarks: {len(profile.landmarks)}",
        f"  routing overrides: {len(profile.overrides)}",
    ]
    if problems:
        lines.append(f"{len(problems)} problem(s):")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append("no problems found")
    return not problems, "\n".join(lines)


def triage_csv(inp: TextIO, out: TextIO, triage: Triage, profile: CityProfile) -> int:
    """Input column `text` (others kept); output adds `category,opd,confidence`.

    The OPD applies the profile's routing (without a place, so no area override). Rows
    without text get empty fields. Returns the number of rows written.
    """
    reader = csv.DictReader(inp)
    fields = list(reader.fieldnames or [])
    if "text" not in fields:
        raise ValueError("input CSV needs a 'text' column")
    writer = csv.DictWriter(
        out, fieldnames=[*fields, "category", "opd", "confidence"], lineterminator="\n"
    )
    writer.writeheader()
    n = 0
    for row in reader:
        text = (row.get("text") or "").strip()
        top = triage.suggest(text, k=1) if text else []
        if top:
            best = top[0]
            row.update(
                category=best.category,
                opd=profile.route(best.category, None),
                confidence=f"{best.confidence:.3f}",
            )
        else:
            row.update(category="", opd="", confidence="")
        writer.writerow(row)
        n += 1
    return n
