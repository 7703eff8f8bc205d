"""The region's boundaries (hub/data/huaihai_boundaries.geojson) and which member city a point is in.

The outlines are simplified (see hub/data/BOUNDARIES.md): near a border the answer may be off by a
few hundred metres, so it is proposed to a person, never decided alone.
"""

from __future__ import annotations

import json
import math
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


# Metres per degree: of latitude, and of longitude at the equator (shrinking with cos(latitude)).
# Over the few kilometres that matter near a border, a flat projection errs by far less than the
# outlines' own few hundred metres.
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


def _edge_distance_m(polygons: tuple[tuple[Ring, ...], ...], longitude: float, latitude: float) -> float:
    """Return the distance in metres from the point to the nearest edge of the outlines."""
    kx = _M_PER_DEG_LON * math.cos(math.radians(latitude))
    ky = _M_PER_DEG_LAT
    best = math.inf
    for polygon in polygons:
        for ring in polygon:
            # Each vertex relative to the point, in metres: the point is the origin.
            points = [((x - longitude) * kx, (y - latitude) * ky) for x, y in ring]
            ax, ay = points[-1]
            for bx, by in points:
                dx, dy = bx - ax, by - ay
                length = dx * dx + dy * dy
                # The foot of the perpendicular from the origin, clamped to the segment.
                t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
                px, py = ax + t * dx, ay + t * dy
                best = min(best, px * px + py * py)
                ax, ay = bx, by
    return math.sqrt(best)


def _bbox_distance_m(area: Area, longitude: float, latitude: float) -> float:
    """Return a lower bound of the distance from the point to the area: to its bounding box."""
    west, south, east, north = area.bbox
    dx = max(west - longitude, 0.0, longitude - east) * _M_PER_DEG_LON * math.cos(math.radians(latitude))
    dy = max(south - latitude, 0.0, latitude - north) * _M_PER_DEG_LAT
    return math.hypot(dx, dy)


@dataclass(frozen=True)
class Placement:
    """Where a point lies: the member city holding it (None outside them) and how far the nearest
    border of a member city is, in metres."""

    slug: str | None
    clearance_m: float


def place(longitude: float, latitude: float) -> Placement:
    """Return the member city the point lies in and its distance to the nearest member border.

    Inside a member city the nearest border is one of its own edges (the cities do not overlap);
    outside them every member city is looked at, nearest bounding box first.
    """
    members = [area for area in areas() if area.member]
    for area in members:
        if area.contains(longitude, latitude):
            return Placement(area.slug, _edge_distance_m(area.polygons, longitude, latitude))
    best = math.inf
    nearest_first = sorted(members, key=lambda area: _bbox_distance_m(area, longitude, latitude))
    for area in nearest_first:
        if _bbox_distance_m(area, longitude, latitude) >= best:
            break
        best = min(best, _edge_distance_m(area.polygons, longitude, latitude))
    return Placement(None, best)
