"""Generate the kecamatan/kelurahan sections of a city profile (cities/<key>.toml).

The product ships only the profile, not the boundary files.  This script reads the official
code list (CSV: kode_kota,nama_kota,kode_kec,nama_kec,kode_kel,nama_kel) and the kelurahan
GeoJSON (properties `kode_kel`, `centroid_lat_src`, `centroid_lng_src`) and prints the
`[[kecamatan]]` and `[[kelurahan]]` tables, centroids rounded to 5 decimals.

    python scripts/build_city_profile.py CSV GEOJSON --city-code 72.71            # print
    python scripts/build_city_profile.py CSV GEOJSON --city-code 72.71 --write cities/palu.toml

With --write, the text between the BEGIN/END marker lines in the profile is replaced.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

BEGIN = "# --- BEGIN GENERATED AREAS (scripts/build_city_profile.py) ---"
END = "# --- END GENERATED AREAS ---"


def _q(text: str) -> str:
    """A TOML basic string."""
    return json.dumps(text, ensure_ascii=False)


def build_areas(csv_path: Path, geojson_path: Path, city_code: str) -> str:
    """Return the TOML text of the kecamatan and kelurahan sections for one kota code."""
    kecamatan: dict[str, str] = {}
    kelurahan: list[tuple[str, str, str]] = []
    with csv_path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["kode_kota"] != city_code:
                continue
            kecamatan.setdefault(row["kode_kec"], row["nama_kec"])
            kelurahan.append((row["kode_kel"], row["nama_kel"], row["kode_kec"]))
    if not kelurahan:
        raise SystemExit(f"{csv_path}: no rows for kota code {city_code}")

    centroids: dict[str, tuple[float, float]] = {}
    data = json.loads(geojson_path.read_text(encoding="utf-8"))
    for feature in data["features"]:
        props = feature.get("properties") or {}
        code = props.get("kode_kel")
        if code:
            centroids[code] = (float(props["centroid_lat_src"]), float(props["centroid_lng_src"]))

    missing = [code for code, _, _ in kelurahan if code not in centroids]
    if missing:
        raise SystemExit(f"{geojson_path}: no centroid for {', '.join(missing)}")

    lines = [BEGIN, f"# {len(kecamatan)} kecamatan, {len(kelurahan)} kelurahan", ""]
    for code, name in sorted(kecamatan.items()):
        lines += ["[[kecamatan]]", f"code = {_q(code)}", f"name = {_q(name)}", ""]
    for code, name, kec in sorted(kelurahan):
        lat, lon = centroids[code]
        lines += [
            "[[kelurahan]]",
            f"code = {_q(code)}",
            f"name = {_q(name)}",
            f"kecamatan = {_q(kec)}",
            f"centroid = [{round(lat, 5)}, {round(lon, 5)}]",
            "",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_into(profile: Path, block: str) -> None:
    """Replace the generated block in `profile` (or append it when there are no markers)."""
    text = profile.read_text(encoding="utf-8") if profile.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    profile.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="wilayah CSV (kode_kota,…,nama_kel)")
    parser.add_argument("geojson", type=Path, help="kelurahan GeoJSON with centroid_* properties")
    parser.add_argument("--city-code", required=True, help="Kemendagri kota code, e.g. 72.71")
    parser.add_argument("--write", type=Path, help="profile to update in place")
    args = parser.parse_args(argv)
    block = build_areas(args.csv, args.geojson, args.city_code)
    if args.write:
        write_into(args.write, block)
    else:
        sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
