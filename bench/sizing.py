"""Bytes on disk per stored thing, and what a year of the ten cities comes to.

Writes realistic rows through the hub's own services (positions through the telemetry ingest,
incidents with a follow-up report and their notifications, bulletins to three cities with
their receipts and deliveries) into a fresh database and measures its growth: the SQLite file
after a WAL checkpoint, or on PostgreSQL the sum of the tables' total relation sizes. Then
prints the sizing table of docs/OPERATIONS.md.

    python bench/sizing.py                         # SQLite in a temporary folder
    python bench/sizing.py --database-url postgresql+psycopg2://postgres@127.0.0.1/empty_db
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _common import machine, make_hub_app, print_table, register_vehicles
from _history import ROOT, RegionWriter
from flask import Flask

from contracts.mqtt import Telemetry, decode_message, encode, telemetry_topic
from hub.extensions import db
from hub.fleet import ingest

DAY = 86_400


def database_bytes(app: Flask) -> int:
    """Return the bytes the database takes now (file, or the tables' relations)."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                # Pages in use: the file less its free list, with the WAL copied back in first.
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int((pages - free) * size)
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    )
                ).scalar_one()
            )


def measure(app: Flask, count: int, write: Callable[[range], None], batch: int) -> float:
    """Write `count` things in transactions of `batch`; return the bytes each added."""
    before = database_bytes(app)
    with app.app_context():
        for start in range(0, count, batch):
            write(range(start, min(count, start + batch)))
            db.session.commit()
        db.session.remove()
    if db_is_postgres(app):
        with app.app_context(), db.engine.connect() as conn:
            # Sizes count dead tuples too; analyse so the figure is what stays.
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    return (database_bytes(app) - before) / count


def db_is_postgres(app: Flask) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--positions", type=int, default=200_000)
    parser.add_argument("--incidents", type=int, default=2_000)
    parser.add_argument("--bulletins", type=int, default=2_000)
    parser.add_argument("--vehicles-per-city", type=int, default=20, help="for the year's estimate")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-sizing-") as folder:
        app = make_hub_app(Path(folder), args.database_url)
        vehicles = register_vehicles(app, 20)
        start = datetime(2026, 1, 1, tzinfo=UTC)

        def positions(indexes: range) -> None:
            batch = []
            for index in indexes:
                slug, code = vehicles[index % len(vehicles)]
                report = Telemetry(
                    vehicle=code,
                    lat=34.2 + (index % 1000) * 1e-5,
                    lon=117.2 + (index % 777) * 1e-5,
                    speed_kmh=float(index % 90),
                    heading=float(index % 360),
                    at=start + timedelta(seconds=index // len(vehicles)),
                    seq=index,
                )
                raw = encode(report)
                address, payload = decode_message(telemetry_topic(ROOT, slug, code), raw)
                batch.append(ingest.Inbound(address, payload, raw))
            ingest.apply_batch(db.session, batch, root=ROOT)

        with app.app_context():
            writer = RegionWriter(db.session)

        def incidents_with_reports(indexes: range) -> None:
            for index in indexes:
                writer.incident(index)

        def bulletins_to_three(indexes: range) -> None:
            for index in indexes:
                writer.bulletin(index)

        per_position = measure(app, args.positions, positions, batch=500)
        per_incident = measure(app, args.incidents, incidents_with_reports, batch=100)
        per_bulletin = measure(app, args.bulletins, bulletins_to_three, batch=100)
        dialect = "postgresql" if db_is_postgres(app) else "sqlite"
        with app.app_context():
            db.engine.dispose()

    raw_day = per_position * DAY  # one report a second
    thinned_day = per_position * 1440  # one a minute, after HUB_POSITION_THIN_AFTER_DAYS
    kept_per_vehicle = 3 * raw_day + 27 * thinned_day  # the defaults: thin after 3 days, keep 30
    vehicles_total = 10 * args.vehicles_per_city
    year_incidents, year_bulletins = 20_000, 5_000
    mb = 1024 * 1024
    year_total = (
        vehicles_total * kept_per_vehicle + year_incidents * per_incident + year_bulletins * per_bulletin
    )
    print_table(
        f"Bytes on disk ({dialect})",
        [
            ("one position", f"{per_position:,.0f}"),
            ("one incident (a follow-up, two notifications)", f"{per_incident:,.0f}"),
            ("one bulletin (three cities, receipts, deliveries)", f"{per_bulletin:,.0f}"),
        ],
    )
    print_table(
        "Sizing",
        [
            ("a vehicle, one day at 1 Hz", f"{raw_day / mb:,.1f} MB"),
            ("a vehicle, one day thinned to 1/min", f"{thinned_day / mb:,.2f} MB"),
            ("a vehicle's 30 days kept (3 raw + 27 thinned)", f"{kept_per_vehicle / mb:,.0f} MB"),
            (
                f"a city of {args.vehicles_per_city} vehicles, steady",
                f"{args.vehicles_per_city * kept_per_vehicle / mb:,.0f} MB",
            ),
            (
                f"ten cities, positions, steady ({vehicles_total} vehicles)",
                f"{vehicles_total * kept_per_vehicle / mb:,.0f} MB",
            ),
            (f"a year's incidents ({year_incidents:,})", f"{year_incidents * per_incident / mb:,.0f} MB"),
            (f"a year's bulletins ({year_bulletins:,})", f"{year_bulletins * per_bulletin / mb:,.0f} MB"),
            (
                "ten cities after a year (positions steady + incidents + bulletins)",
                f"{year_total / mb:,.0f} MB",
            ),
        ],
    )
    print_table("Machine", machine(mqtt=False))


if __name__ == "__main__":
    main()
