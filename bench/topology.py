"""The regional topology on one machine: flow start latency by flow mode, the desk behind haproxy.

Run from the repository root: `.venv/bin/python bench/topology.py [--quick]`. It brings the
topology of `hub topology up` up twice (about a minute each; no simulated vehicles):

1. with `HUB_FLOW_MODE=local` (flows run in the two web processes), then
2. with `HUB_FLOW_MODE=deployment` (flows run on two `hub flows serve` workers),

and each time records incidents at level III through the API behind haproxy, one every
`--gap` seconds; each asks for a notify-neighbours flow. The flow start latency is from the
API's 201 (its transaction committed, the dispatcher woken) to the `start_time` Prefect holds for
the flow run (when it entered Running). In the deployment run it then logs coordinators in and
loads the desk, the incident list and the vehicles page as `bench/desk.py` does (a pause of
`--think` seconds on average between pages; 0 for a closed loop) with each desk's push stream
open, first through haproxy (two web processes), then straight to one web process, and reports
the page times. The database holds the seeded cities and users only, not the desk
benchmark's year of data.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, percentile, print_table
from bench.desk import PAGES, add_coordinators, collect_coordinators, start_coordinators
from hub.kernel.models import FlowRequest
from hub.runtime.topology import Topology, TopologyOptions

PASSWORD = "bench-topology-password"  # noqa: S105  # bench users in a throw-away database
SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "samples" / "incident-create.json"


def city_token(topology: Topology, city: str) -> str:
    """Issue a bearer token for the city through `hub issue-token`, as an operator would."""
    answer = subprocess.run(
        [sys.executable, "-m", "web", "issue-token", "--city", city, "--name", f"bench-{time.time_ns()}"],
        env=topology.hub_env("cli"),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return answer.stdout.strip().splitlines()[-1]


def flow_start_latencies(topology: Topology, engine: sa.Engine, count: int, gap: float) -> list[float]:
    """Record `count` level III incidents through haproxy; return each flow's start latency (s)."""
    assert topology.prefect is not None
    token = city_token(topology, "shangqiu")
    headers = {"Authorization": f"Bearer {token}"}
    body = json.loads(SAMPLE.read_text(encoding="utf-8"))
    committed: dict[str, float] = {}
    for n in range(count):
        answer = requests.post(
            f"{topology.url}/api/v1/incidents",
            json={**body, "title": f"流程启动测试 {n}"},
            headers=headers,
            timeout=60,
        )
        answer.raise_for_status()
        committed[answer.json()["id"]] = time.time()
        time.sleep(gap)
    latencies: list[float] = []
    deadline = time.monotonic() + 180
    for public_id, at in committed.items():
        while True:
            with Session(engine) as session:
                run_id = session.scalar(
                    sa.select(FlowRequest.flow_run_id).where(FlowRequest.key.contains(public_id))
                )
            start = None
            if run_id:
                run = requests.get(f"{topology.prefect.api_url}/flow_runs/{run_id}", timeout=10).json()
                start = run.get("start_time")
            if start:
                latencies.append(datetime.fromisoformat(start).timestamp() - at)
                break
            if time.monotonic() > deadline:
                break  # counted as missing
            time.sleep(0.2)
    return latencies


def make_users(engine: sa.Engine, count: int) -> list[str]:
    """Create `count` coordinators spread over the cities; return their user names."""
    with Session(engine) as session:
        return add_coordinators(session, count, PASSWORD)


def desk_times(
    base: str, names: list[str], seconds: float, think: float
) -> tuple[dict[str, list[float]], int]:
    """Coordinators at work for `seconds` (`bench/desk.py`'s, each with its desk stream open)."""
    clients, results = start_coordinators(base, names, think, seconds, PASSWORD)
    page_times, _, failures = collect_coordinators(clients, results)
    return page_times, failures


def run(options: TopologyOptions) -> Topology:
    print(f"== bringing the topology up (HUB_FLOW_MODE={options.flow_mode}) …", flush=True)
    started = time.monotonic()
    topology = Topology(options).start()
    print(f"   up in {time.monotonic() - started:.0f} s", flush=True)
    return topology


def latency_rows(mode: str, values: list[float], expected: int) -> list[tuple[str, object]]:
    return [
        (
            f"{mode}: flow start min / p50 / p99 / max ({len(values)} of {expected})",
            f"{min(values, default=float('nan')) * 1000:.0f} / {percentile(values, 0.5) * 1000:.0f} / "
            f"{percentile(values, 0.99) * 1000:.0f} / {max(values, default=float('nan')) * 1000:.0f} ms",
        )
    ]


def page_rows(label: str, times: dict[str, list[float]], failures: int) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for path in PAGES:
        values = times[path]
        rows.append(
            (
                f"{label}: {path} p50 / p95 ({len(values)} loads)",
                f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f} ms",
            )
        )
    rows.append((f"{label}: failed loads", failures))
    return rows


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 flows, 6 coordinators, 20 s a window")
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between two incidents")
    parser.add_argument("--flows", type=int, default=None, help="incidents (flows) per mode")
    parser.add_argument("--mode", choices=("local", "deployment"), action="append", help="only this mode")
    parser.add_argument("--no-desk", action="store_true", help="measure the flow start latency only")
    parser.add_argument(
        "--think", type=float, default=3.0, help="mean seconds between a coordinator's pages (0: no pause)"
    )
    args = parser.parse_args()
    flows, coordinators, seconds = (10, 6, 20.0) if args.quick else (30, 20, 60.0)
    flows = args.flows or flows
    logging.basicConfig(level=logging.WARNING)
    rows: list[tuple[str, object]] = [("load average at the start", load())]
    for mode in args.mode or ("local", "deployment"):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-topology-{mode}-"))
        options = TopologyOptions(folder, flow_mode=mode, vehicles=0, ingest_workers=1)
        try:
            topology = run(options)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        engine = sa.create_engine(topology.database_url)
        try:
            time.sleep(5)  # the processes' start-up work settles
            rows.append((f"{mode}: load average before", load()))
            latencies = flow_start_latencies(topology, engine, flows, args.gap)
            rows += latency_rows(mode, latencies, flows)
            rows.append((f"{mode}: each, in order (s)", " ".join(f"{v:.1f}" for v in latencies)))
            rows.append((f"{mode}: load average after", load()))
            if mode == "deployment" and not args.no_desk:
                names = make_users(engine, coordinators)
                times, failures = desk_times(topology.url, names, seconds, args.think)
                rows += page_rows(f"haproxy, {len(topology.web)} web processes", times, failures)
                rows.append(("load average after", load()))
                times, failures = desk_times(topology.web_urls[0], names, seconds, args.think)
                rows += page_rows("straight to one web process", times, failures)
                rows.append(("load average after", load()))
        finally:
            engine.dispose()
            topology.stop()
            shutil.rmtree(folder, ignore_errors=True)
    rows.append(("seconds between incidents", f"{args.gap:g}"))
    if not args.no_desk:
        rows.append(("coordinators, seconds a window", f"{coordinators}, {seconds:.0f}"))
        rows.append(("mean pause between a coordinator's pages", f"{args.think:g} s"))
    print_table("The regional topology on one machine", [*rows, *machine(mqtt=False, prefect=True)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
