"""Benchmark: telemetry through city-edge brokers and their bridges, against vehicles on the hub's broker.

Run from the repository root: `.venv/bin/python bench/edge_bridge.py [--seconds 30] [--vehicles 200]
[--rounds 2]`. It starts a regional Mosquitto (the hub's settings, free port), one edge Mosquitto
per city (xuzhou and suqian) bridged to it with `hub.runtime.edge_broker`, and a fresh SQLite
database (WAL, checkpointed in the background as `hub run` does) with the vehicles registered. The
hub's path runs on the regional broker: `MqttLink` and the `MqttBridge` writer.

Each round has two windows: `--vehicles` MQTT clients per city (one process per city) report
telemetry once a second at QoS 1, spread evenly over the second, first through their city's edge
broker and its bridge, then straight to the regional broker. Latency is from `Telemetry.at` (set
just before each publish) to the return of `MqttBridge.write`, after the batch's commit. Every
report published must be stored once.

Prints tables; exits 1 only on a real failure (a report lost or doubled), never on a slow figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from _common import BENCH_ACTOR, machine, make_hub_app, percentile, print_table, start_broker
from mqtt_ingest import SEQ_LIVE, TimedBridge, link_config, quiet_logging, vehicle_emulator

from connectors.mqtt_link import MqttLink
from flows.context import use_app
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel import cities
from hub.runtime import ManagedMosquitto, MosquittoConfig, free_port
from hub.runtime.edge_broker import EdgeBridge, bridge_config_lines
from web.runner import wal_checkpointer

CITIES = ("xuzhou", "suqian")


def start_edge(data_dir: Path, city: str, regional: ManagedMosquitto) -> ManagedMosquitto:
    """Start a city's edge broker with its bridge to the regional broker (anonymous, as in the bench)."""
    bridge = EdgeBridge(city, regional.host, regional.port, "bench")
    config = MosquittoConfig(
        port=free_port(),
        data_dir=data_dir,
        user="root" if os.geteuid() == 0 else None,
        extra=bridge_config_lines(bridge),
    )
    return ManagedMosquitto(config).start()


def wait_for_bridges(regional: ManagedMosquitto, timeout: float = 30.0) -> None:
    """Wait until every city's bridge has connected to the regional broker."""
    deadline = time.monotonic() + timeout
    while not all(f"as bridge-{city} " in regional.log_tail(500) for city in CITIES):
        if time.monotonic() > deadline:
            raise RuntimeError(f"bridges not connected within {timeout} s:\n{regional.log_tail()}")
        time.sleep(0.1)


def window(
    ctx: mp.context.SpawnContext,
    ports: dict[str, int],
    vehicles: dict[str, list[str]],
    bridge: TimedBridge,
    seconds: float,
    round_no: int,
) -> dict:
    """Run every city's vehicles against its port for `seconds`; return latencies and losses."""
    out = ctx.Queue()
    processes, controls = [], []
    for city, codes in vehicles.items():
        mine = [(city, code, index / len(codes)) for index, code in enumerate(codes)]
        control = ctx.Queue()
        process = ctx.Process(
            target=vehicle_emulator, args=(ports[city], mine, seconds, control, out), daemon=True
        )
        process.start()
        processes.append(process)
        controls.append(control)
    ready = sum(out.get(timeout=120)["ready"] for _ in processes)
    first_commit = len(bridge.commits)
    go_at = time.time() + 1.0
    for control in controls:
        control.put(go_at)
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    published = sum(r["published"] for r in results)
    # Reports of this window carry `at` after go_at; earlier windows' duplicates cannot match.
    latencies: dict[tuple[str, int], float] = {}
    doubled = 0
    deadline = time.monotonic() + 60
    scanned = first_commit
    while time.monotonic() < deadline:
        for commit in bridge.commits[scanned:]:
            for message in commit.batch:
                if not message.topic.endswith("/telemetry"):
                    continue
                body = json.loads(message.payload)
                sent = datetime.fromisoformat(body["at"]).timestamp()
                if body["seq"] < SEQ_LIVE or sent < go_at - 0.5:
                    continue
                key = (message.topic, body["seq"])
                if key in latencies:
                    doubled += 1  # a QoS 1 redelivery: the database stores it once
                    continue
                latencies[key] = commit.at - sent
        scanned = len(bridge.commits)
        if len(latencies) >= published:
            break
        time.sleep(0.2)
    return {
        "round": round_no,
        "vehicles": ready,
        "published": published,
        "stored": len(latencies),
        "redelivered": doubled,
        "latencies": list(latencies.values()),
        "max_lag": max(r["max_lag"] for r in results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each window (default 30)")
    parser.add_argument("--vehicles", type=int, default=200, help="vehicles per city (default 200)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both windows (default 2)")
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    print_table(
        f"Edge-bridge telemetry benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        [
            *machine(),
            ("load average at start", " ".join(f"{v:.2f}" for v in os.getloadavg())),
            ("cities", ", ".join(CITIES)),
            ("vehicles", f"{args.vehicles} per city at 1 Hz, QoS 1"),
            ("window", f"{args.seconds:.0f} s, {args.rounds} rounds"),
        ],
    )
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        root = Path(tmp)
        app = make_hub_app(root / "instance")
        quiet_logging()
        vehicles: dict[str, list[str]] = {}
        with app.app_context():
            for slug in CITIES:
                city = cities.by_slug(db.session, slug)
                codes = [f"bench-{index:03d}" for index in range(args.vehicles)]
                for code in codes:
                    fleet.register_vehicle(db.session, BENCH_ACTOR, city, code, code)
                vehicles[slug] = codes
            db.session.commit()
            db.session.remove()
        regional = start_broker(root / "regional")
        edges = {city: start_edge(root / f"edge-{city}", city, regional) for city in CITIES}
        use_app(app)
        checkpointer = wal_checkpointer(app).start()
        link = MqttLink(link_config(regional.port)).start()
        bridge = TimedBridge(link, root="hh")
        try:
            link.wait_connected(30)
            bridge.start()
            wait_for_bridges(regional)
            runs: dict[str, list[dict]] = {"through edge brokers": [], "straight to the regional broker": []}
            for round_no in range(1, args.rounds + 1):
                through = {city: edge.port for city, edge in edges.items()}
                straight = dict.fromkeys(CITIES, regional.port)
                for name, ports in (
                    ("through edge brokers", through),
                    ("straight to the regional broker", straight),
                ):
                    runs[name].append(window(ctx, ports, vehicles, bridge, args.seconds, round_no))
            for name, results in runs.items():
                every = [latency for result in results for latency in result["latencies"]]
                lost = sum(r["published"] - r["stored"] for r in results)
                if lost:
                    failures.append(f"{name}: {lost} reports not stored")
                p99s = [percentile(r["latencies"], 0.99) for r in results]
                print_table(
                    f"Telemetry {name}",
                    [
                        ("reports published", f"{sum(r['published'] for r in results):,}"),
                        ("committed (distinct)", f"{sum(r['stored'] for r in results):,}"),
                        ("redelivered (stored once by the key)", sum(r["redelivered"] for r in results)),
                        ("publish -> commit p50", f"{statistics.median(every) * 1000:.1f} ms"),
                        ("publish -> commit p99", f"{percentile(every, 0.99) * 1000:.1f} ms"),
                        ("p99 per round", ", ".join(f"{p * 1000:.1f} ms" for p in p99s)),
                        ("max", f"{max(every) * 1000:.1f} ms"),
                        ("publisher lag max", f"{max(r['max_lag'] for r in results) * 1000:.1f} ms"),
                    ],
                )
        finally:
            bridge.stop()
            link.stop()
            checkpointer.stop()
            use_app(None)
            for edge in edges.values():
                edge.stop()
            regional.stop()
    print_table("Load average at the end", [("1, 5, 15 min", " ".join(f"{v:.2f}" for v in os.getloadavg()))])
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
