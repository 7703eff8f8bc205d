"""Mutual aid: ranking candidates in a large registry, and commitments racing for one scarce resource.

1. A registry of 10 cities x `--entries` entries (10,000 by default: pumps, boats, tents,
   generators, graded rescue teams, verified over the last 60 days), written in bulk. A five-line
   request of Linyi is ranked as the hub ranks it when it asks the cities (`sourcing_rings`:
   every line ranked across the other nine cities, then grouped in rings); the p50 and p95 of
   that, and of ranking one line, over `--trials` runs.
2. One scarce resource (10 pumps) and 50 threads offering 50 acceptances a second between them
   for `--seconds` (60 by default), each of its own offer of one unit, in its own transaction;
   a winner gives its hold back 0.2 s later, so the race never ends. A monitor reads the ledger
   every 20 ms. Printed: attempts a second achieved, how many won and lost, the p50/p95 of an
   acceptance, the most ever reserved (never more than 10), and whether the ledger at the end
   equals the live holds.

    .venv/bin/python bench/mutual_aid.py [--quick] [--database-url postgresql+psycopg2://…/empty_db]
                                         [--no-vacuum]

On PostgreSQL the registry is vacuumed and analysed after the bulk load (`--no-vacuum`: not).

The database must be empty (SQLite: a fresh file in a temporary folder, the default).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine, make_hub_app, percentile, print_table
from contracts.resource_types import CATALOGUE
from hub.app import intending_to_write
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict
from hub.kernel.models import City, Role
from hub.mutual_aid import services
from hub.mutual_aid.models import AidCommitment, AidResource
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line

TYPES = (
    ("equipment.pump.drainage", None),
    ("equipment.boat.assault", None),
    ("supply.tent.cotton", None),
    ("supply.tent.summer", None),
    ("equipment.generator", None),
    ("team.water", 1),
    ("team.water", 2),
    ("team.usar", 2),
    ("team.fire_rescue", 1),
    ("supply.quilt", None),
)
LINES = (
    ("P", "equipment.pump.drainage", None, 40),
    ("B", "equipment.boat.assault", None, 20),
    ("T", "supply.tent.summer", None, 500),
    ("G", "equipment.generator", None, 10),
    ("W", "team.water", 2, 3),
)


def _actor(session: sa.orm.Session, slug: str) -> Actor:
    city = session.scalar(sa.select(City).where(City.slug == slug))
    assert city is not None
    return Actor("user", f"bench-{slug}", city.id, Role.COORDINATOR)


def fill_registry(app: Flask, per_city: int) -> float:
    """Write `per_city` entries for each city in bulk; return the seconds it took."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with app.app_context():
        cities = list(db.session.scalars(sa.select(City).order_by(City.slug)))
        for city in cities:
            rows = []
            for n in range(per_city):
                code, grade = TYPES[n % len(TYPES)]
                row = CATALOGUE[code]
                rows.append(
                    {
                        "owner_city_id": city.id,
                        "external_id": f"bench-{n}",
                        "type_code": code,
                        "kind": row.kind.value,
                        "grade": grade,
                        "bookable": row.bookable,
                        "name": row.name_zh,
                        "on_hand": Decimal(1) if row.bookable else Decimal(rng.randint(1, 200)),
                        "reserved": Decimal(0),
                        "deployed": Decimal(0),
                        "unit": row.unit,
                        "lat": city.latitude + rng.uniform(-0.3, 0.3),
                        "lon": city.longitude + rng.uniform(-0.3, 0.3),
                        "place": city.name_zh,
                        "status": "available",
                        "contact_name": "值班室",
                        "contact_phone": "0000000",
                        "contact_role": "",
                        "verified_at": now - timedelta(days=rng.uniform(0, 60)),
                        "verified_by": "bench",
                        "source": "hub",
                    }
                )
            db.session.execute(sa.insert(AidResource), rows)
            db.session.commit()
        db.session.remove()
    return time.perf_counter() - started


def vacuum(app: Flask) -> float:
    """VACUUM ANALYZE the registry (PostgreSQL) as autovacuum soon would; return the seconds it took.

    Ranked straight after a bulk load, the registry has no statistics and no visibility map
    (index-only scans visit the table), and autovacuum starts on it while the rankings run.
    """
    started = time.perf_counter()
    with app.app_context():
        engine = db.engines[None]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE aid_resources")
    return time.perf_counter() - started


def ranking(app: Flask, trials: int) -> list[tuple[str, object]]:
    """Rank a five-line request of Linyi `trials` times; return the figures."""
    with app.app_context():
        linyi = _actor(db.session, "linyi")
        request = services.create_request(
            db.session,
            linyi,
            title="bench: 沂河洪水",
            lines=[line(lid, type_code=code, quantity=q, min_grade=grade) for lid, code, grade, q in LINES],
            contact=CONTACT,
        )
        db.session.commit()
        whole: list[float] = []
        single: list[float] = []
        candidates = 0
        for _ in range(trials):
            db.session.expire_all()
            started = time.perf_counter()
            rings = services.sourcing_rings(db.session, request, fresh_for=FRESH_FOR)
            whole.append(time.perf_counter() - started)
            candidates = sum(len(r.candidates) for r in rings)
            started = time.perf_counter()
            services.rank_candidates(db.session, request.lines[0].id, fresh_for=FRESH_FOR)
            single.append(time.perf_counter() - started)
        db.session.remove()
    ms = 1000
    return [
        ("trials", trials),
        ("candidates ranked (five lines)", candidates),
        (
            "five-line request p50 / p95 (ms)",
            f"{percentile(whole, 0.5) * ms:.1f} / {percentile(whole, 0.95) * ms:.1f}",
        ),
        (
            "one line p50 / p95 (ms)",
            f"{percentile(single, 0.5) * ms:.1f} / {percentile(single, 0.95) * ms:.1f}",
        ),
    ]


def race(
    app: Flask, seconds: float, rate: int = 50, on_hand: int = 10
) -> tuple[list[tuple[str, object]], bool]:
    """Offer `rate` acceptances a second on one resource of `on_hand` units.

    Return the figures, and whether the ledger held: never more than `on_hand` reserved, the
    ledger equal to the live holds at the end, and no acceptance failing other than with a 409.
    """
    attempts_wanted = int(seconds * rate)
    with app.app_context():
        owner, requester = _actor(db.session, "xuzhou"), _actor(db.session, "linyi")
        scarce = services.register_entry(
            db.session, owner, entry(external_id="bench-scarce", quantity=Decimal(on_hand))
        )
        request = services.create_request(
            db.session, requester, title="bench: race", lines=[line(quantity=rate)], contact=CONTACT
        )
        offers = [
            services.make_offer(db.session, owner, request.lines[0].id, scarce.id, Decimal(1)).id
            for _ in range(attempts_wanted)
        ]
        db.session.commit()
        scarce_id = scarce.id
        db.session.remove()

    latencies: list[float] = []
    won = lost = failed = 0
    most = Decimal(0)
    lock = threading.Lock()
    stop = threading.Event()

    with app.app_context():
        engine = db.engines[None]

    def monitor() -> None:
        nonlocal most
        table = AidResource.__table__
        while not stop.is_set():
            with engine.connect() as connection:
                reserved = connection.execute(
                    sa.select(table.c.reserved).where(table.c.id == scarce_id)
                ).scalar_one()
            most = max(most, reserved)
            stop.wait(0.02)

    def worker(index: int, start: float) -> None:
        nonlocal won, lost, failed
        mine = offers[index::rate]
        with app.app_context():
            for k, offer_id in enumerate(mine):
                due = start + k + index / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                began = time.perf_counter()
                outcome = "lost"
                with intending_to_write():
                    try:
                        services.accept(db.session, requester, offer_id)
                        db.session.commit()
                        outcome = "won"
                    except Conflict:
                        db.session.rollback()
                    except Exception:
                        db.session.rollback()
                        outcome = "failed"
                took = time.perf_counter() - began
                db.session.remove()
                if outcome == "won":
                    time.sleep(0.2)
                    with intending_to_write():
                        services.cancel(db.session, requester, offer_id)
                        db.session.commit()
                    db.session.remove()
                with lock:
                    latencies.append(took)
                    won += outcome == "won"
                    lost += outcome == "lost"
                    failed += outcome == "failed"

    with app.app_context():
        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        start = time.perf_counter() + 0.5
        threads = [threading.Thread(target=worker, args=(i, start)) for i in range(rate)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        stop.set()
        watcher.join()
        db.session.expire_all()
        resource = db.session.get(AidResource, scarce_id)
        assert resource is not None
        live = db.session.scalar(
            sa.select(sa.func.count()).where(
                AidCommitment.resource_id == scarce_id, AidCommitment.state == "accepted"
            )
        )
        consistent = resource.reserved == Decimal(live or 0)
        db.session.remove()
    ms = 1000
    held = most <= on_hand and consistent and failed == 0
    return [
        ("attempts (wanted / made)", f"{attempts_wanted} / {len(latencies)}"),
        ("attempts a second achieved", f"{len(latencies) / elapsed:.1f}"),
        ("won / lost (409) / failed", f"{won} / {lost} / {failed}"),
        (
            "acceptance p50 / p95 (ms)",
            f"{percentile(latencies, 0.5) * ms:.1f} / {percentile(latencies, 0.95) * ms:.1f}",
        ),
        ("most ever reserved (of 10)", most),
        ("ledger equals live holds at the end", "yes" if consistent else "NO"),
    ], held


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000 entries a city, 10 trials, 15 s of racing"
    )
    parser.add_argument("--entries", type=int, help="entries per city (default 10,000; quick 1,000)")
    parser.add_argument("--trials", type=int, help="rankings measured (default 30; quick 10)")
    parser.add_argument("--seconds", type=float, help="seconds of racing (default 60; quick 15)")
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: SQLite in a temp folder)"
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: rank straight after the bulk load, while autovacuum catches up",
    )
    args = parser.parse_args(argv)
    entries = args.entries or (1_000 if args.quick else 10_000)
    trials = args.trials or (10 if args.quick else 30)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    with tempfile.TemporaryDirectory(prefix="bench-aid-") as folder:
        app = make_hub_app(Path(folder), args.database_url)
        database = "PostgreSQL" if args.database_url else "SQLite (WAL)"
        print_table("Machine", [*machine(mqtt=False), ("database", database)])
        took = fill_registry(app, entries)
        written: list[tuple[str, object]] = [("written in (s)", f"{took:.1f}")]
        if args.database_url and not args.no_vacuum:
            written.append(("VACUUM ANALYZE in (s)", f"{vacuum(app):.1f}"))
        print_table(f"Registry: 10 cities x {entries:,} entries", written)
        print_table("Ranking a five-line request", ranking(app, trials))
        figures, held = race(app, seconds)
        print_table(f"50 acceptances a second on 10 units for {seconds:.0f} s", figures)
        with app.app_context():
            db.session.remove()
            db.engines[None].dispose()
    if not held:
        print("FAILED: the ledger of the scarce resource did not hold", file=sys.stderr)
    return 0 if held else 1


if __name__ == "__main__":
    raise SystemExit(main())
