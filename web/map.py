"""Lay out the region's map from city centres; no tiles, no external assets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hub.models import City, Incident

WIDTH, HEIGHT, MARGIN = 560, 380, 50


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
class RegionMap:
    """Everything the map template draws."""

    width: int
    height: int
    cities: list[MapCity]
    links: list[tuple[float, float, float, float]]


def region_map(cities: list[City], own: City | None, incidents: list[Incident]) -> RegionMap:
    """Project the city centres onto the map and attach open incidents to their cities."""
    if not cities:
        return RegionMap(WIDTH, HEIGHT, [], [])
    mean_lat = math.radians(sum(c.latitude for c in cities) / len(cities))
    xs = [c.longitude * math.cos(mean_lat) for c in cities]
    ys = [c.latitude for c in cities]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = min((WIDTH - 2 * MARGIN), (HEIGHT - 2 * MARGIN)) / span
    x_off = (WIDTH - (max(xs) - min(xs)) * scale) / 2
    y_off = (HEIGHT - (max(ys) - min(ys)) * scale) / 2

    def place(city: City) -> tuple[float, float]:
        x = (city.longitude * math.cos(mean_lat) - min(xs)) * scale + x_off
        y = (max(ys) - city.latitude) * scale + y_off
        return round(x, 1), round(y, 1)

    touching: dict[int, list[int]] = {c.id: [] for c in cities}
    for incident in incidents:
        ids = {incident.reporting_city_id, *(c.id for c in incident.affected_cities)}
        for city_id in ids:
            touching.setdefault(city_id, []).append(incident.level)
    placed = {c.id: place(c) for c in cities}
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
    return RegionMap(WIDTH, HEIGHT, drawn, links)
