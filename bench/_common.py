"""Helpers the benchmarks share: a private broker or Prefect server, a migrated hub database, CPU
clocks, tables.

Not a benchmark itself: `make bench` runs every `bench/*.py`, so running this file only says so.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import paho.mqtt
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import upgrade

from hub.app import MIGRATIONS_DIR, create_core_app
from hub.config import Settings
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.seed import seed_cities
from hub.runtime import (
    ManagedMosquitto,
    ManagedPrefectServer,
    MosquittoConfig,
    ProcessStartError,
    free_port,
    mosquitto_binary,
)

BENCH_ACTOR = Actor("system", "bench", None, Role.ADMIN)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# A private broker --------------------------------------------------------------------------------


def start_broker(data_dir: Path, attempts: int = 3) -> ManagedMosquitto:
    """Start Mosquitto on a free loopback port with the hub's settings (see `MosquittoConfig`).

    The defaults are the managed broker's: persistence, a large `max_queued_messages`,
    `max_inflight_messages 0`, `set_tcp_nodelay true`. Anonymous clients are allowed here.
    """
    if not mosquitto_binary().is_file():
        raise SystemExit("Mosquitto is not installed: run `make system-deps` (apt-get install mosquitto)")
    for attempt in range(1, attempts + 1):
        broker = ManagedMosquitto(
            MosquittoConfig(
                port=free_port(),
                data_dir=data_dir,
                user="root" if os.geteuid() == 0 else None,
            )
        )
        try:
            return broker.start()
        except ProcessStartError:
            # Another process may have taken the free port before the broker bound it.
            if attempt == attempts or "Address already in use" not in broker.log_tail():
                raise
    raise AssertionError("unreachable")


# A private Prefect server ------------------------------------------------------------------------


def start_prefect_server(home: Path, database_url: str | None = None) -> ManagedPrefectServer:
    """Start the hub's managed Prefect server in `home` and point this process's Prefect at it.

    This is what `hub run` does when no PREFECT_API_URL is given: `prefect server start` as a child
    process on a free loopback port with its own PREFECT_HOME (SQLite, or `database_url`: a
    `postgresql+asyncpg://` database with the pg_trgm extension). Prefect reads its settings
    when it is first imported, so this must run before anything imports `prefect` (the `flows`
    modules do); the client's own PREFECT_HOME goes into `home` too, away from `~/.prefect`.
    """
    if "prefect" in sys.modules:
        raise RuntimeError("start the Prefect server before importing prefect")
    env = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url} if database_url else None
    server = ManagedPrefectServer(home / "server", ready_timeout=120.0, env=env).start()
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_HOME"] = str(home / "client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    return server


# A hub database ----------------------------------------------------------------------------------


def make_hub_app(instance: Path, database_url: str | None = None) -> Flask:
    """Return the hub's core app, migrated and with the cities.

    On a fresh SQLite database (WAL) in `instance`, or on `database_url`, which must be empty.
    """
    settings = Settings(
        secret_key="bench-" + os.urandom(8).hex(),
        encryption_key=Fernet.generate_key().decode(),
        instance_path=instance,
        database_url=database_url,
    )
    app = create_core_app(settings)
    # Alembic logs every revision at INFO; the benchmark's output is its tables.
    logging.disable(logging.INFO)
    try:
        with app.app_context():
            upgrade(directory=str(MIGRATIONS_DIR))
    finally:
        logging.disable(logging.NOTSET)
    with app.app_context():
        seed_cities(db.session)
        db.session.commit()
        db.session.remove()
    return app


def register_vehicles(app: Flask, count: int) -> list[tuple[str, str]]:
    """Register `count` vehicles spread over the ten cities; return their (city slug, code)."""
    vehicles: list[tuple[str, str]] = []
    with app.app_context():
        cities = list(db.session.scalars(sa.select(City).order_by(City.slug)))
        for index in range(count):
            city = cities[index % len(cities)]
            code = f"bench-{index:03d}"
            fleet.register_vehicle(db.session, BENCH_ACTOR, city, code, code)
            vehicles.append((city.slug, code))
        db.session.commit()
        db.session.remove()
    return vehicles


# CPU clocks --------------------------------------------------------------------------------------


def _stat_cpu(path: str) -> float:
    """Return utime + stime in seconds from a /proc/.../stat file."""
    with open(path, encoding="ascii") as stat:
        text = stat.read()
    # The command name may contain spaces; the fields after it are fixed (proc(5)).
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_cpu(pid: int | None = None) -> float:
    """Return the CPU seconds (user + system) a process has used so far."""
    return _stat_cpu(f"/proc/{pid or 'self'}/stat")


def thread_cpu(native_id: int) -> float:
    """Return the CPU seconds a thread of this process has used so far."""
    return _stat_cpu(f"/proc/self/task/{native_id}/stat")


# Figures -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `values` (sorted or not); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def print_table(title: str, rows: Iterable[tuple[str, object]]) -> None:
    """Print a two-column table of labels and values."""
    rows = [(label, str(value)) for label, value in rows]
    width = max((len(label) for label, _ in rows), default=0)
    print(f"\n{title}")
    print("-" * len(title))
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
    sys.stdout.flush()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(*, mqtt: bool = True, prefect: bool = False) -> list[tuple[str, object]]:
    """Describe where the figures come from (the MQTT stack's versions, Prefect's if asked)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rows: list[tuple[str, object]] = [
        ("cores", os.cpu_count()),
        ("cpu", model),
        ("python", platform.python_version()),
    ]
    if mqtt:
        mosquitto = "unknown"
        binary = shutil.which("mosquitto") or str(mosquitto_binary())
        try:
            # `mosquitto -h` prints its version on the first line and exits non-zero.
            result = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5, check=False)
            mosquitto = (result.stdout or result.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            pass
        rows += [("paho-mqtt", paho.mqtt.__version__), ("broker", mosquitto)]
    if prefect:
        rows += [("prefect", _version("prefect")), ("requests", _version("requests"))]
    rows += [("sqlite", sqlite3.sqlite_version), ("sqlalchemy", sa.__version__)]
    return rows


if __name__ == "__main__":
    print("bench/_common.py holds helpers for the benchmarks; nothing to measure here.")
