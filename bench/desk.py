"""The duty desk under a year of data: page times and push delays with coordinators working at once.

Run from the repository root: `.venv/bin/python bench/desk.py [--quick] [--database-url URL]`.
It fills a fresh database (SQLite in a temporary folder, or the empty PostgreSQL database named)
with a year for the ten cities: incidents with a report and their notices, bulletins with their
recipients, a million vehicle positions (bulk inserts). It serves the hub with waitress on a
loopback port; each coordinator (a thread with its own logged-in `requests` session) keeps a push
stream of its desk open and loads the desk, the incident list and the vehicles page in turn, pausing
between pages as a person reads (`--think`, 1–5 s by default; `--think 0` clicks without pause),
each starting within one pause of the start. Every few seconds (`--bulletin-every`, 4 s: a stress)
a bulletin addressed to every other city is committed; the push delay is the time from that commit
to the desk's update carrying its title, on each addressed city's open desks.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask_migrate import upgrade

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, percentile, print_table
from contracts.bulletins import BulletinCreate
from contracts.common import IncidentCategory, IncidentStatus, ReportKind
from hub.app import MIGRATIONS_DIR
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin, BulletinRecipient
from hub.config import Settings
from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import VehiclePosition
from hub.incidents.models import Incident, IncidentReport, Notification, incident_affected_cities
from hub.kernel import auth as auth_service
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role, User
from hub.kernel.seed import seed_cities
from web.app import create_app
from web.desk import live as desk_live

PASSWORD = "bench-desk-password"  # noqa: S105  # bench users in a throw-away database
ADMIN = Actor("system", "bench", None, Role.ADMIN)
PAGES = ("/", "/incidents/", "/vehicles")
CHUNK = 20_000


def fill(app, incidents: int, bulletin_count: int, positions: int, vehicles: int) -> dict[str, float]:
    """Bulk-insert a year of data; return the seconds each part took."""
    taken: dict[str, float] = {}
    rng = random.Random(7)
    now = datetime.now(UTC)
    year_ago = now - timedelta(days=365)
    with app.app_context():
        cities = list(db.session.scalars(sa.select(City).order_by(City.id)))
        ids = [c.id for c in cities]
        start = time.perf_counter()
        categories = list(IncidentCategory)
        for first in range(0, incidents, CHUNK):
            rows = []
            for n in range(first, min(first + CHUNK, incidents)):
                at = year_ago + timedelta(seconds=rng.randrange(365 * 86400))
                rows.append(
                    {
                        "public_id": uuid.uuid4(),
                        "category": categories[n % len(categories)],
                        "level": rng.choice((2, 3, 4, 4, 4)),
                        "title": f"年度事件 {n}",
                        "description": "",
                        "location": "",
                        "occurred_at": at,
                        "reported_at": at,
                        "updated_at": at,
                        "reporting_city_id": ids[n % len(ids)],
                        # A year's incidents are closed but for the last few dozen.
                        "status": IncidentStatus.CLOSED if n < incidents - 40 else IncidentStatus.RESPONDING,
                        "exercise": False,
                    }
                )
            db.session.execute(sa.insert(Incident), rows)
        incident_rows = db.session.execute(
            sa.select(Incident.id, Incident.reporting_city_id, Incident.reported_at)
        )
        affected, reports, notices = [], [], []
        for incident_id, city_id, at in incident_rows:
            other = ids[(ids.index(city_id) + 1) % len(ids)]
            affected += [
                {"incident_id": incident_id, "city_id": city_id},
                {"incident_id": incident_id, "city_id": other},
            ]
            reports.append(
                {
                    "incident_id": incident_id,
                    "kind": ReportKind.INITIAL,
                    "body": "首报",
                    "reported_at": at,
                    "city_id": city_id,
                }
            )
            notices.append(
                {
                    "incident_id": incident_id,
                    "city_id": other,
                    "reason": "affected",
                    "created_at": at,
                    "read_at": at,
                }
            )
        for table, rows in (
            (incident_affected_cities, affected),
            (IncidentReport, reports),
            (Notification, notices),
        ):
            for first in range(0, len(rows), CHUNK):
                db.session.execute(sa.insert(table), rows[first : first + CHUNK])  # type: ignore[arg-type]
        db.session.commit()
        taken["incidents, reports, notices"] = time.perf_counter() - start

        start = time.perf_counter()
        rows = []
        for n in range(bulletin_count):
            at = year_ago + timedelta(seconds=rng.randrange(365 * 86400))
            rows.append(
                {
                    "public_id": uuid.uuid4(),
                    "kind": "bulletin",
                    "issuing_city_id": ids[n % len(ids)],
                    "category": "natural_disaster",
                    "area": "淮海",
                    "title": f"年度通报 {n}",
                    "text": "通报正文",
                    "scope": "public",
                    "receipt_deadline": at + timedelta(minutes=30),
                    "issued_at": at,
                    "exercise": False,
                    "source": "hub",
                }
            )
        db.session.execute(sa.insert(Bulletin), rows)
        recipients = [
            {
                "bulletin_id": b_id,
                "city_id": ids[(ids.index(c_id) + k) % len(ids)],
                "delivered_at": at,
                "receipt_at": at + timedelta(minutes=5),
                "signed_via": "hub",
                "delivery_attempts": 1,
            }
            for b_id, c_id, at in db.session.execute(
                sa.select(Bulletin.id, Bulletin.issuing_city_id, Bulletin.issued_at)
            )
            for k in (1, 2, 3)
        ]
        for first in range(0, len(recipients), CHUNK):
            db.session.execute(sa.insert(BulletinRecipient), recipients[first : first + CHUNK])
        db.session.commit()
        taken["bulletins, recipients"] = time.perf_counter() - start

        start = time.perf_counter()
        vehicle_ids = []
        for n in range(vehicles):
            vehicle, _ = fleet.register_vehicle(
                db.session, ADMIN, cities[n % len(cities)], f"v{n:03d}", f"指挥车{n}"
            )
            vehicle.latitude, vehicle.longitude, vehicle.online = (
                cities[n % len(cities)].latitude,
                cities[n % len(cities)].longitude,
                True,
            )
            db.session.flush()
            vehicle_ids.append(vehicle.id)
        db.session.commit()
        step = timedelta(seconds=365 * 86400 * vehicles / max(positions, 1))
        for first in range(0, positions, CHUNK):
            rows = []
            for n in range(first, min(first + CHUNK, positions)):
                at = year_ago + step * (n // vehicles)
                rows.append(
                    {
                        "vehicle_id": vehicle_ids[n % vehicles],
                        "at": at,
                        "seq": n,
                        "latitude": 34.5,
                        "longitude": 117.5,
                        "speed_kmh": 40.0,
                        "heading": 90.0,
                        "received_at": at,
                    }
                )
            db.session.execute(sa.insert(VehiclePosition), rows)
            db.session.commit()
        taken["vehicles, positions"] = time.perf_counter() - start
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does some minutes after a bulk load: the planner's statistics.
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        db.session.remove()
    return taken


def add_coordinators(session: Any, count: int, password: str = PASSWORD) -> list[str]:
    """Add `count` coordinators spread over the cities (committed); return their user names."""
    names = []
    cities = list(session.scalars(sa.select(City).order_by(City.id)))
    hashed = auth_service.hash_password(password)
    for n in range(count):
        city = cities[n % len(cities)]
        name = f"coord-{city.slug}-{n}"
        session.add(
            User(
                username=name,
                display_name=name,
                city=city,
                role=Role.COORDINATOR,
                password_hash=hashed,
                active=True,
                failed_logins=0,
            )
        )
        names.append(name)
    session.commit()
    return names


def make_users(app, count: int) -> list[str]:
    """Create `count` coordinators in the app's database; return their user names."""
    with app.app_context():
        names = add_coordinators(db.session, count)
        db.session.remove()
    return names


def login(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    """Log a session in through the real form."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token, "no CSRF token on the log-in page"
    answer = session.post(
        f"{base}/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        timeout=30,
    )
    assert answer.ok and "/login" not in answer.url, f"{username} could not log in"
    return session


MARKER = re.compile(r"推送测试[0-9a-f]{8}")
CLIENT_PROCESSES = 2


def play_coordinators(
    base: str, names: list[str], think: float, seconds: float, seed: int, results: Any, password: str
) -> None:
    """Play `names` at their desks for `seconds` (in a process of its own); put the figures on `results`.

    Each coordinator keeps a push stream of its desk open and loads the pages in turn, pausing
    `think` seconds on average between them. Put "ready" once every stream is open, then the page
    times by path and, per stream, the first time each bulletin marker arrived (monotonic clock,
    the same in every process of the machine), and how many page loads failed.
    """
    stop = threading.Event()
    lock = threading.Lock()
    page_times: dict[str, list[float]] = defaultdict(list)
    seen_at: list[tuple[str, float]] = []
    failed = 0
    opened = threading.Semaphore(0)

    def reader(session: requests.Session) -> None:
        seen: set[str] = set()  # a desk keeps showing an item: only its first update counts
        with session.get(f"{base}/dashboard/events", stream=True, timeout=(10, 300)) as stream:
            opened.release()
            for line in stream.iter_lines(decode_unicode=True):
                if stop.is_set():
                    return
                if line and line.startswith("data:"):
                    now = time.monotonic()
                    for marker in MARKER.findall(line):
                        if marker not in seen:
                            seen.add(marker)
                            with lock:
                                seen_at.append((marker, now))

    def worker(session: requests.Session, pace: random.Random) -> None:
        nonlocal failed
        n = 0
        if think > 0:
            # People do not all click at the same instant: each starts within a pause of the start.
            stop.wait(pace.uniform(0, think))
        while not stop.is_set():
            path = PAGES[n % len(PAGES)]
            start = time.perf_counter()
            try:
                answer: requests.Response | None = session.get(f"{base}{path}", timeout=60)
            except requests.RequestException:
                answer = None
            elapsed = time.perf_counter() - start
            with lock:
                if answer is not None and answer.status_code == 200:
                    page_times[path].append(elapsed)
                else:
                    failed += 1
            n += 1
            if think > 0:
                stop.wait(pace.uniform(think / 3, think * 5 / 3))

    readers = [
        threading.Thread(target=reader, args=(login(base, name, password),), daemon=True) for name in names
    ]
    workers = [
        threading.Thread(
            target=worker, args=(login(base, name, password), random.Random(f"{seed}-{n}")), daemon=True
        )
        for n, name in enumerate(names)
    ]
    for t in readers:
        t.start()
    for _ in readers:
        opened.acquire(timeout=60)
    results.put("ready")
    for t in workers:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in workers:
        t.join(timeout=60)  # each finishes the page it is loading
    with lock:
        results.put((dict(page_times), list(seen_at), failed))


def start_coordinators(
    base: str, names: list[str], think: float, seconds: float, password: str = PASSWORD
) -> tuple[list[Any], Any]:
    """Start the coordinators in processes of their own; return once every push stream is open.

    They are browsers on other machines: in the server's process their parsing would take its
    interpreter lock. Pass what this returns to `collect_coordinators` after `seconds`.
    """
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    groups = [names[k::CLIENT_PROCESSES] for k in range(CLIENT_PROCESSES)]
    clients = [
        spawn.Process(target=play_coordinators, args=(base, group, think, seconds, k, results, password))
        for k, group in enumerate(groups)
        if group
    ]
    for process in clients:
        process.start()
    for _ in clients:
        assert results.get(timeout=120) == "ready", "a coordinators' process did not start"
    return clients, results


def collect_coordinators(
    clients: list[Any], results: Any
) -> tuple[dict[str, list[float]], list[tuple[str, float]], int]:
    """Return the page times by path, the markers' arrivals and the failed loads of every client."""
    page_times: dict[str, list[float]] = defaultdict(list)
    seen: list[tuple[str, float]] = []
    failed = 0
    for _ in clients:
        pages, arrivals, failures = results.get(timeout=180)
        for path, values in pages.items():
            page_times[path] += values
        seen += arrivals
        failed += failures
    for process in clients:
        process.join(timeout=30)
    return page_times, seen, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, 6 coordinators, 20 s")
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: SQLite in a temporary folder)"
    )
    parser.add_argument(
        "--think",
        type=float,
        default=3.0,
        help="mean seconds a coordinator reads a page before the next (uniform over ±2/3 of it; 0: no pause)",
    )
    parser.add_argument(
        "--bulletin-every",
        type=float,
        default=4.0,
        help="seconds between bulletins to the nine other cities (4: a stress; a day sees a few an hour)",
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    incidents, bulletin_count, positions = 20_000 // scale, 5_000 // scale, 1_000_000 // scale
    coordinators, seconds = (6, 20.0) if args.quick else (20, 60.0)
    instance = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    settings = Settings(
        secret_key="bench-" + os.urandom(8).hex(),
        encryption_key=Fernet.generate_key().decode(),
        instance_path=instance,
        database_url=args.database_url,
        secure_cookies=False,
    )
    app = create_app(settings)
    logging.disable(logging.INFO)  # Alembic logs every revision; the output is the table
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        seed_cities(db.session)
        db.session.commit()
        db.session.remove()
    taken = fill(app, incidents, bulletin_count, positions, vehicles=50)
    names = make_users(app, coordinators)

    from waitress.server import create_server

    threads = coordinators + 8
    watcher = desk_live.watcher(app)
    watcher.slots = desk_live.stream_slots_for(threads)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    base = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    threading.Thread(target=server.run, daemon=True).start()

    clients, results = start_coordinators(base, names, args.think, seconds + 6)
    sent: dict[str, float] = {}
    time.sleep(3)  # the streams are open and have sent their first state
    expected = 0
    ends = time.monotonic() + seconds
    with app.app_context():
        issuer = db.session.scalars(sa.select(User).order_by(User.id)).first()
        actor = Actor.for_user(issuer)
        others = [c.slug for c in db.session.scalars(sa.select(City)) if c.id != issuer.city_id]
        addressed_desks = sum(1 for name in names if not name.startswith(f"coord-{issuer.city.slug}-"))
        while time.monotonic() < ends:
            marker = f"推送测试{uuid.uuid4().hex[:8]}"
            data = BulletinCreate.model_validate(
                {
                    "kind": "bulletin",
                    "category": "natural_disaster",
                    "area": "淮海",
                    "title": marker,
                    "text": "推送延迟",
                    "addressed_cities": others,
                    "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
                }
            )
            bulletins.issue(db.session, actor, data)
            db.session.commit()
            sent[marker] = time.monotonic()
            expected += addressed_desks
            time.sleep(min(args.bulletin_every, max(0.0, ends - time.monotonic())))
        db.session.remove()
    page_times, seen, failed = collect_coordinators(clients, results)
    arrivals = [at - sent[marker] for marker, at in seen if marker in sent]
    watcher.stop(wait=10)  # ends the push streams, as `hub run` does on its way out
    load = os.getloadavg()
    pause = f"{args.think / 3:.1f}–{args.think * 5 / 3:.1f} s" if args.think else "none"
    rows: list[tuple[str, object]] = [("database", "PostgreSQL" if args.database_url else "SQLite (WAL)")]
    rows += [(f"fill: {part}", f"{value:.1f} s") for part, value in taken.items()]
    rows += [
        ("incidents / bulletins / positions", f"{incidents} / {bulletin_count} / {positions}"),
        ("coordinators (each with a push stream open)", coordinators),
        ("client processes", len(clients)),
        ("pause between a coordinator's pages", pause),
        ("seconds measured", f"{seconds:.0f}"),
        ("a bulletin to the nine other cities every", f"{args.bulletin_every:g} s ({len(sent)} sent)"),
    ]
    for path in PAGES:
        values = page_times[path]
        rows.append(
            (
                f"page {path} p50 / p95 ({len(values)} loads)",
                f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f} ms",
            )
        )
    rows.append(
        (
            f"push delay p50 / p99 ({len(arrivals)} of {expected} desk updates)",
            f"{percentile(arrivals, 0.5) * 1000:.0f} / {percentile(arrivals, 0.99) * 1000:.0f} ms",
        )
    )
    rows.append(("failed page loads", failed))
    rows.append(("load average (1, 5, 15 min) at the end", " ".join(f"{v:.2f}" for v in load)))
    print_table("Duty desk under a year of data", [*rows, *machine(mqtt=False)])
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
