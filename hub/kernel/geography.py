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
# Edges are filed in square cells of this many degrees (about 2 km), so that a lookup reads the
# few dozen edges near the point instead of the region's ten thousand.
_CELL = 0.02
# Beyond this the distance to the nearest border is reported as this: far enough for any use.
CLEARANCE_CAP_M = 20_000.0

Segment = tuple[float, float, float, float]


@dataclass(frozen=True)
class Placement:
    """Where a point lies: the member city holding it (None outside them) and how far the nearest
    border of a member city is, in metres (at most `CLEARANCE_CAP_M`)."""

    slug: str | None
    clearance_m: float


class _EdgeIndex:
    """The member cities' edges by latitude band (to test containment) and by cell (distance)."""

    def __init__(self, members: tuple[Area, ...]) -> None:
        self.members = members
        self.bands: list[dict[int, list[Segment]]] = []
        self.cells: dict[tuple[int, int], list[Segment]] = {}
        for area in members:
            bands: dict[int, list[Segment]] = {}
            for polygon in area.polygons:
                for ring in polygon:
                    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                        segment = (x1, y1, x2, y2)
                        for band in range(_cell(min(y1, y2)), _cell(max(y1, y2)) + 1):
                            bands.setdefault(band, []).append(segment)
                        for ix in range(_cell(min(x1, x2)), _cell(max(x1, x2)) + 1):
                            for iy in range(_cell(min(y1, y2)), _cell(max(y1, y2)) + 1):
                                self.cells.setdefault((ix, iy), []).append(segment)
            self.bands.append(bands)

    def member_at(self, x: float, y: float) -> Area | None:
        """Return the member city holding the point (even-odd rule over its band's edges)."""
        band = _cell(y)
        for area, bands in zip(self.members, self.bands, strict=True):
            west, south, east, north = area.bbox
            if not (west <= x <= east and south <= y <= north):
                continue
            inside = False
            for x1, y1, x2, y2 in bands.get(band, ()):
                if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
                    inside = not inside
            if inside:
                return area
        return None

    def clearance_m(self, x: float, y: float) -> float:
        """Return the distance to the nearest member edge, searching cells in widening rings."""
        kx = _M_PER_DEG_LON * math.cos(math.radians(y))
        cell_m = _CELL * min(kx, _M_PER_DEG_LAT)
        cx, cy = _cell(x), _cell(y)
        best = CLEARANCE_CAP_M**2
        ring = 0
        # An edge filed in a cell of ring r (r cells out, square rings) is at least r - 1 cells
        # away from the point: once that is beyond the best found, no further ring can beat it.
        while ring * cell_m < CLEARANCE_CAP_M and not (ring > 0 and ((ring - 1) * cell_m) ** 2 >= best):
            for ix in range(cx - ring, cx + ring + 1):
                for iy in range(cy - ring, cy + ring + 1):
                    if max(abs(ix - cx), abs(iy - cy)) != ring:
                        continue
                    for x1, y1, x2, y2 in self.cells.get((ix, iy), ()):
                        ax, ay = (x1 - x) * kx, (y1 - y) * _M_PER_DEG_LAT
                        dx, dy = (x2 - x1) * kx, (y2 - y1) * _M_PER_DEG_LAT
                        length = dx * dx + dy * dy
                        t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
                        px, py = ax + t * dx, ay + t * dy
                        best = min(best, px * px + py * py)
            ring += 1
        return math.sqrt(best)


def _cell(value: float) -> int:
    return math.floor(value / _CELL)


@cache
def _index() -> _EdgeIndex:
    return _EdgeIndex(tuple(area for area in areas() if area.member))


def place(longitude: float, latitude: float) -> Placement:
    """Return the member city the point lies in and its distance to the nearest member border."""
    index = _index()
    area = index.member_at(longitude, latitude)
    return Placement(area.slug if area else None, index.clearance_m(longitude, latitude))
