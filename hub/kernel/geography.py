"""The region's boundaries (hub/data/huaihai_boundaries.geojson) and which member city a point is in.

The outlines are simplified (see hub/data/BOUNDARIES.md): near a border the answer may be off by a
few hundred metres, so it is proposed to a person, never decided alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Area:
    """One prefecture's outline: its polygons, each an outer ring and its holes."""

    slug: str | None  # member cities only
    name_zh: str
    member: bool
    polygons: tuple[tuple[Ring, ...], ...]
    bbox: tuple[float, float, float, float]  # west, south, east, north

    def contains(self, longitude: float, latitude: float) -> bool:
        """Return whether the point lies inside the outline (not in a hole)."""
        west, south, east, north = self.bbox
        if not (west <= longitude <= east and south <= latitude <= north):
            return False
        return any(
            _in_ring(polygon[0], longitude, latitude)
            and not any(_in_ring(hole, longitude, latitude) for hole in polygon[1:])
            for polygon in self.polygons
        )


def _in_ring(ring: Ring, x: float, y: float) -> bool:
    """Even-odd ray casting: count the edges a ray to the east of the point crosses."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def boundaries_text() -> str:
    """Return the GeoJSON the hub ships, as stored."""
    return resources.files("hub.data").joinpath("huaihai_boundaries.geojson").read_text(encoding="utf-8")


@cache
def areas() -> tuple[Area, ...]:
    """Return every outline of the boundaries file, member cities first as in the file."""
    found = []
    for feature in json.loads(boundaries_text())["features"]:
        props, geometry = feature["properties"], feature["geometry"]
        raw = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        polygons = tuple(
            tuple(tuple((float(x), float(y)) for x, y, *_ in ring) for ring in poly) for poly in raw
        )
        xs = [x for poly in polygons for x, _ in poly[0]]
        ys = [y for poly in polygons for _, y in poly[0]]
        found.append(
            Area(
                slug=props.get("slug") if props.get("member") else None,
                name_zh=props["name_zh"],
                member=bool(props.get("member")),
                polygons=polygons,
                bbox=(min(xs), min(ys), max(xs), max(ys)),
            )
        )
    return tuple(found)


def member_city_at(longitude: float, latitude: float) -> str | None:
    """Return the slug of the member city whose outline holds the point, or None outside them."""
    for area in areas():
        if area.member and area.contains(longitude, latitude):
            return area.slug
    return None
