"""Benchmark: what watched incident areas cost where positions are stored.

Run from the repository root:
`.venv/bin/python bench/incident_areas.py [--vehicles N] [--reports M] [--areas K]`.
On a fresh SQLite database (WAL) with the ten cities and N vehicles driving about their cities'
centres, it feeds `ingest.apply_batch` M batches of one report per vehicle (a fleet at 1 Hz),
first with no area watched, then with K circles of 5 km watched around the cities' centres, and
times each batch and its commit in CPU seconds of this process (steadier than wall time on a
shared machine). Prints a table; exits 1 if a vehicle's entry into an area is recorded twice.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _common import machine, make_hub_app, print_table, register_vehicles

from contracts.incidents import IncidentCreate
from contracts.mqtt import Telemetry, decode_message, encode, telemetry_topic
from hub.extensions import db
from hub.fleet import areas, ingest
from hub.fleet.models import WatchAreaEvent
from hub.incidents import services as incidents
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role


def _run(vehicles: int, reports: int, watched: int) -> tuple[float, int]:
    """Return CPU seconds per report and the area events recorded."""
    with tempfile.TemporaryDirectory() as folder:
        app = make_hub_app(Path(folder))
        fleet = register_vehicles(app, vehicles)
        with app.app_context():
            cities = list(db.session.scalars(sa.select(City).order_by(City.id)))
            centres = {c.slug: (c.longitude, c.latitude) for c in cities}
            for city in cities[:watched]:
                actor = Actor("user", f"bench-{city.slug}", city.id, Role.COORDINATOR)
                incident = incidents.create_incident(
                    db.session,
                    actor,
                    IncidentCreate(
                        category="natural_disaster",
                        level="IV",
                        title="bench",
                        occurred_at=datetime.now(UTC) - timedelta(hours=2),
                        affected_cities=(city.slug,),
                        latitude=city.latitude,
                        longitude=city.longitude,
                    ),
                )
                areas.watch_circle(
                    db.session,
                    actor,
                    incident_id=incident.id,
                    owner_city_id=city.id,
                    latitude=city.latitude,
                    longitude=city.longitude,
                    radius_m=5_000,
                )
            db.session.commit()
            at = datetime.now(UTC) - timedelta(hours=1)
            spent = 0.0
            for step in range(reports):
                at += timedelta(seconds=1)
                batch = []
                for n, (city, code) in enumerate(fleet):
                    # Circles of 2 to 12 km around the centre, so vehicles cross the 5 km edge.
                    radius_deg = (2 + n % 10) / 111.0
                    angle = (step / 60.0) + n
                    lon = centres[city][0] + radius_deg * math.cos(angle)
                    lat = centres[city][1] + radius_deg * math.sin(angle) * 0.8
                    report = Telemetry(
                        vehicle=code,
                        lat=round(lat, 6),
                        lon=round(lon, 6),
                        speed_kmh=40.0,
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
            events = db.session.scalar(sa.select(sa.func.count()).select_from(WatchAreaEvent)) or 0
            distinct = db.session.execute(
                sa.select(WatchAreaEvent.area_id, WatchAreaEvent.vehicle_id, WatchAreaEvent.at).distinct()
            ).all()
            if len(distinct) != events:
                print("an area event was recorded twice", file=sys.stderr)
                sys.exit(1)
            db.session.remove()
        return spent / (vehicles * reports), events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--reports", type=int, default=120, help="batches: one report per vehicle each")
    parser.add_argument("--areas", type=int, default=5)
    args = parser.parse_args()
    print_table("Machine", machine(mqtt=False))
    none, _ = _run(args.vehicles, args.reports, 0)
    some, events = _run(args.vehicles, args.reports, args.areas)
    print_table(
        f"Ingest, {args.vehicles} vehicles x {args.reports} batches (CPU per report)",
        [
            ("no area watched", f"{none * 1e6:,.0f} µs"),
            (f"{args.areas} areas watched", f"{some * 1e6:,.0f} µs"),
            ("difference", f"{(some - none) * 1e6:,.0f} µs"),
            ("area events recorded", events),
        ],
    )


if __name__ == "__main__":
    main()
