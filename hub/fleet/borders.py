"""Which member city each vehicle counts as in, and its crossings from one city into another.

Decided where positions are stored (`hub.fleet.ingest`), from each vehicle's latest position,
against the shipped boundaries (`hub.kernel.geography`). The outlines are a few hundred metres
off here and there, and roads run along borders, so a vehicle counts as having entered a city
only once it is `MARGIN_M` inside it (from every border): until then it stays where it was. A
vehicle that wanders across a border and back within that band changes nothing.

Looking a point up costs a few milliseconds of pure Python; a vehicle far from any border need
not be looked up again until it has driven that far. `_Clearances` remembers, per vehicle, the
last point looked up and how far it was from the nearest border: a later point within that
distance lies in the same city, at least the difference away from any border. It holds only
facts about places, so several processes (ingest workers) may each keep their own.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update

from hub.fleet.models import Vehicle, VehicleCrossing
from hub.kernel import geography
from hub.kernel.models import City
from hub.kernel.types import DbSession, affected_rows

# How far inside a city a vehicle must be before it counts as there (see the module's docstring).
MARGIN_M = 300.0
_REMEMBERED = 10_000


@dataclass(frozen=True)
class Crossing:
    """A vehicle counted in another area: from and to a member city's id (None: outside them)."""

    vehicle_id: int
    from_city_id: int | None
    to_city_id: int | None
    at: datetime


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the distance between two (lon, lat) points a few kilometres apart, in metres."""
    kx = 111_320.0 * math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot((a[0] - b[0]) * kx, (a[1] - b[1]) * 110_574.0)


class _Clearances:
    """Per vehicle, the last point looked up and its placement (a bounded, thread-safe memory)."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self._known: OrderedDict[int, tuple[tuple[float, float], geography.Placement]] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0

    def place(self, vehicle_id: int, point: tuple[float, float]) -> geography.Placement:
        """Return where the point lies, with a clearance that may understate, never overstate."""
        with self._lock:
            known = self._known.get(vehicle_id)
        if known is not None:
            moved = _metres(known[0], point)
            left = known[1].clearance_m - moved
            # Within the clearance no border was crossed; only a point well inside is settled.
            if left >= MARGIN_M:
                return geography.Placement(known[1].slug, left)
        placement = geography.place(*point)
        self.lookups += 1
        with self._lock:
            self._known[vehicle_id] = (point, placement)
            self._known.move_to_end(vehicle_id)
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        return placement


_clearances = _Clearances()


def settle(session: DbSession, vehicle_ids: list[int]) -> list[Crossing]:
    """Decide again which city these vehicles count as in, from their stored latest positions.

    A change is written compare-and-set on the vehicle's area, so two writers that settle the
    same vehicle at once record its crossing once. Returns the crossings recorded.
    """
    if not vehicle_ids:
        return []
    rows = session.execute(
        select(
            Vehicle.id,
            Vehicle.longitude,
            Vehicle.latitude,
            Vehicle.position_at,
            Vehicle.area_city_id,
            Vehicle.area_since,
        ).where(Vehicle.id.in_(vehicle_ids), Vehicle.position_at.is_not(None))
    ).all()
    if not rows:
        return []
    city_ids = dict(session.execute(select(City.slug, City.id)).tuples().all())
    crossings = []
    points: dict[int, tuple[float, float]] = {}
    for vehicle_id, lon, lat, at, area_id, since in rows:
        if lon is None or lat is None or at is None:
            continue  # no position yet
        points[vehicle_id] = (lon, lat)
        placement = _clearances.place(vehicle_id, (lon, lat))
        here = city_ids.get(placement.slug) if placement.slug is not None else None
        placed = since is not None
        if placed and (here == area_id or placement.clearance_m < MARGIN_M):
            continue  # where it was, or not yet far enough across to count
        same_area = Vehicle.area_city_id.is_(None) if area_id is None else Vehicle.area_city_id == area_id
        same_since = Vehicle.area_since.is_(None) if since is None else Vehicle.area_since == since
        moved = session.execute(
            update(Vehicle)
            .where(and_(Vehicle.id == vehicle_id, same_area, same_since))
            .values(area_city_id=here, area_since=at)
        )
        if affected_rows(moved) != 1:
            continue  # another writer settled it first
        crossing = Crossing(vehicle_id, area_id if placed else None, here, at)
        if placed or here is not None:
            crossings.append(crossing)
    if crossings:
        session.execute(
            insert(VehicleCrossing),
            [
                {
                    "vehicle_id": c.vehicle_id,
                    "from_city_id": c.from_city_id,
                    "to_city_id": c.to_city_id,
                    "at": c.at,
                    "latitude": points[c.vehicle_id][1],
                    "longitude": points[c.vehicle_id][0],
                }
                for c in crossings
            ],
        )
    return crossings
