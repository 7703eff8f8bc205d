"""Lay out the region's map from city centres; no tiles, no external assets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hub.fleet.models import Vehicle
from hub.incidents.models import Incident
from hub.kernel.models import City

WIDTH, HEIGHT, MARGIN = 640, 360, 44


@dataclass(frozen=True)
class Projection:
    """An equirectangular projection fitted to the cities' centres."""

    cos_lat: float
    min_x: float
    max_y: float
    scale: float
    x_off: float
    y_off: float

    @classmethod
    def fit(cls, cities: list[City]) -> Projection:
        """Fit the projection so every city centre lies inside the margins."""
        cos_lat = math.cos(math.radians(sum(c.latitude for c in cities) / len(cities)))
        xs = [c.longitude * cos_lat for c in cities]
        ys = [c.latitude for c in cities]
        x_span = (max(xs) - min(xs)) or 1.0
        y_span = (max(ys) - min(ys)) or 1.0
        scale = min((WIDTH - 2 * MARGIN) / x_span, (HEIGHT - 2 * MARGIN) / y_span)
        return cls(
            cos_lat=cos_lat,
            min_x=min(xs),
            max_y=max(ys),
            scale=scale,
            x_off=(WIDTH - (max(xs) - min(xs)) * scale) / 2,
            y_off=(HEIGHT - (max(ys) - min(ys)) * scale) / 2,
        )

    def place(self, longitude: float, latitude: float) -> tuple[float, float]:
        """Return the map position of a point."""
        x = (longitude * self.cos_lat - self.min_x) * self.scale + self.x_off
        y = (self.max_y - latitude) * self.scale + self.y_off
        return round(x, 1), round(y, 1)


@dataclass(frozen=True)
class MapCity:
    """A city as drawn: position, and the most severe open incident touching it."""

    slug: str
    city: City
    x: float
    y: float
    open_incidents: int
    worst_level: int | None
    is_own: bool


@dataclass(frozen=True)
class MapVehicle:
    """A vehicle as drawn at its last known position."""

    vehicle: Vehicle
    x: float
    y: float


@dataclass(frozen=True)
class RegionMap:
    """Everything the map template draws."""

    width: int
    height: int
    cities: list[MapCity]
    links: list[tuple[float, float, float, float]]
    vehicles: list[MapVehicle]


def region_map(
    cities: list[City], own: City | None, incidents: list[Incident], vehicles: list[Vehicle] | None = None
) -> RegionMap:
    """Project the city centres onto the map and attach open incidents and vehicles."""
    if not cities:
        return RegionMap(WIDTH, HEIGHT, [], [], [])
    projection = Projection.fit(cities)
    touching: dict[int, list[int]] = {c.id: [] for c in cities}
    for incident in incidents:
        for city_id in {incident.reporting_city_id, *(c.id for c in incident.affected_cities)}:
            touching.setdefault(city_id, []).append(incident.level)
    placed = {c.id: projection.place(c.longitude, c.latitude) for c in cities}
    drawn = [
        MapCity(
            c.slug,
            c,
            *placed[c.id],
            len(touching[c.id]),
            min(touching[c.id]) if touching[c.id] else None,
            own is not None and c.id == own.id,
        )
        for c in cities
    ]
    links = sorted({(*placed[a.id], *placed[b.id]) for a in cities for b in a.neighbours if a.id < b.id})
    shown = [
        MapVehicle(v, *projection.place(v.longitude, v.latitude))
        for v in vehicles or []
        if v.longitude is not None and v.latitude is not None
    ]
    return RegionMap(WIDTH, HEIGHT, drawn, links, shown)
