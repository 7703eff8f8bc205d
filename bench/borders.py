"""Benchmark: what border hand-off costs where positions are stored.

Run from the repository root: `.venv/bin/python bench/borders.py [--vehicles N] [--reports M]`.
On a fresh SQLite database (WAL) with the ten cities and N vehicles, it feeds `ingest.apply_batch`
batches of one report per vehicle, M batches, as a fleet at 1 Hz sends them: every vehicle drives
at 80 km/h on a straight road from its city's centre toward another city's, so some cross
borders. It times, in CPU seconds of this process (steadier than wall time on a shared machine):

1. `geography.place` for points spread over the region (a cold lookup);
2. `apply_batch` + commit per report with border settling, and with `borders.settle` replaced
   by a no-op (the cost of everything else), each run twice in turns on fresh databases;
3. how many reports needed a lookup (the rest were settled by the per-vehicle clearance).

Prints tables; exits 1 only if a crossing is recorded twice.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _common import machine, make_hub_app, print_table, register_vehicles

from contracts.mqtt import Telemetry, decode_message, encode, telemetry_topic
from hub.extensions import db
from hub.fleet import borders, ingest
from hub.fleet.models import VehicleCrossing
from hub.kernel import geography
from hub.kernel.models import City

KMH = 80.0


def _cold_lookups(count: int) -> float:
    rng = random.Random(7)
    points = [(rng.uniform(115.0, 120.0), rng.uniform(32.8, 36.3)) for _ in range(count)]
    geography.place(*points[0])  # builds the index once
    began = time.process_time()
    for point in points:
        geography.place(*point)
    return (time.process_time() - began) / count


def _run(vehicles: int, reports: int, settle: bool) -> tuple[float, int, int]:
    """Return CPU seconds per report, lookups made and crossings recorded."""
    with tempfile.TemporaryDirectory() as folder:
        app = make_hub_app(Path(folder))
        fleet = register_vehicles(app, vehicles)
        with app.app_context():
            centres = {c.slug: (c.longitude, c.latitude) for c in db.session.scalars(sa.select(City))}
        slugs = sorted(centres)
        rng = random.Random(11)
        roads = []
        for city, _ in fleet:
            start, end = centres[city], centres[rng.choice([s for s in slugs if s != city])]
            roads.append((start, end))
        original: Callable[..., list[borders.Crossing]] = borders.settle
        borders._clearances = borders._Clearances()
        if not settle:
            borders.settle = lambda session, vehicle_ids: []  # type: ignore[assignment]
        at = datetime.now(UTC) - timedelta(hours=1)
        spent = 0.0
        try:
            with app.app_context():
                for step in range(reports):
                    at += timedelta(seconds=1)
                    batch = []
                    for n, ((city, code), (start, end)) in enumerate(zip(fleet, roads, strict=True)):
                        km = KMH * step / 3600.0
                        total = max(
                            0.001, 111.0 * ((end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2) ** 0.5
                        )
                        f = min(1.0, km / total)
                        point = (start[0] + (end[0] - start[0]) * f, start[1] + (end[1] - start[1]) * f)
                        report = Telemetry(
                            vehicle=code,
                            lat=round(point[1], 6),
                            lon=round(point[0], 6),
                            speed_kmh=KMH,
                            heading=90.0,
                            at=at + timedelta(microseconds=n),
                            seq=step,
                        )
                        raw = encode(report)
                        address, payload = decode_message(telemetry_topic("hh", city, code), raw)
                        batch.append(ingest.Inbound(address, payload, raw))
                    began = time.process_time()
                    ingest.apply_batch(db.session, batch, root="hh")
                    db.session.commit()
                    spent += time.process_time() - began
                crossings = db.session.scalar(sa.select(sa.func.count()).select_from(VehicleCrossing)) or 0
                distinct = db.session.execute(
                    sa.select(VehicleCrossing.vehicle_id, VehicleCrossing.at).distinct()
                ).all()
                if len(distinct) != crossings:
                    print("a crossing was recorded twice", file=sys.stderr)
                    sys.exit(1)
                db.session.remove()
        finally:
            borders.settle = original
        return spent / (vehicles * reports), borders._clearances.lookups, crossings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--reports", type=int, default=300, help="batches: one report per vehicle each")
    args = parser.parse_args()
    print_table("Machine", machine(mqtt=False))
    print_table("1. Cold lookup", [("geography.place, per point", f"{_cold_lookups(2000) * 1e6:,.0f} µs")])
    with_settle, without = [], []
    lookups = crossings = 0
    for _ in range(2):
        cost, lookups, crossings = _run(args.vehicles, args.reports, settle=True)
        with_settle.append(cost)
        without.append(_run(args.vehicles, args.reports, settle=False)[0])
    a, b = statistics.median(with_settle), statistics.median(without)
    total = args.vehicles * args.reports
    print_table(
        f"2. apply_batch + commit, {args.vehicles} vehicles x {args.reports} reports (CPU, median of 2)",
        [
            ("with border settling, per report", f"{a * 1e6:,.1f} µs"),
            ("without (settle a no-op), per report", f"{b * 1e6:,.1f} µs"),
            ("border settling, per report", f"{(a - b) * 1e6:,.1f} µs ({(a - b) / b:.0%})"),
        ],
    )
    print_table(
        "3. Lookups",
        [
            ("reports needing a lookup", f"{lookups:,} of {total:,} ({lookups / total:.1%})"),
            ("crossings recorded (first placements included)", f"{crossings:,}"),
        ],
    )


if __name__ == "__main__":
    main()
