"""Kelurahan polygons imported with `lapor areas import`."""

from __future__ import annotations

from sqlmodel import select

from storage.base import Store
from storage.models import AreaPolygon


class AreaRepo(Store):
    def area_polygons(self) -> dict[str, str]:
        return {a.kode_kel: a.geometry for a in self._s.exec(select(AreaPolygon))}

    def save_area_polygon(self, kode_kel: str, kode_kec: str, name: str, geometry: str) -> None:
        row = self._s.get(AreaPolygon, kode_kel)
        if row is None:
            row = AreaPolygon(
                kode_kel=kode_kel,
                kode_kec=kode_kec,
                name=name,
                geometry=geometry,
                imported_at=self.now(),
            )
        else:
            row.kode_kec, row.name, row.geometry = kode_kec, name, geometry
            row.imported_at = self.now()
        self._s.add(row)
