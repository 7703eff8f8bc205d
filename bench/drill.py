"""Benchmark: a joint drill's injects played through the live pipes by the hub's own scheduler path;
the lateness of each delivery against its due time, per channel, and the AAR draft after ENDEX.

Run from the repository root: `.venv/bin/python bench/drill.py [--quick]`. It starts the hub's
managed Prefect server in a temporary PREFECT_HOME, a private Mosquitto on a free loopback port,
a fresh SQLite database (WAL) migrated with the project's migrations and seeded with the ten
cities, and ten partner simulators (`connectors.sims.partner`) over real sockets, one per city,
registered with `partners.register`; each city gets a vehicle and a 119 linkage system.

The hub's parts run as `hub run` wires them (web/runner.py), with their default timings: the
`Scheduler` (a tick every 5 s, then it wakes the dispatcher), the `FlowDispatcher` with the
`LocalLauncher` (four flow threads), and the `MqttLink` with the `MqttBridge` publishing the
outbox (1 s poll, or at once when woken). Xuzhou's coordinator plans a functional drill for the
ten cities with 100 injects (30 with `--quick`) over three channels in rounds of ten (one inject
to each city at the same offset, as a drill's "all cities" warning is), the rounds two scenario
minutes apart at a time scale of 30 (4 s of wall time). The drill is approved with STARTEX a few
seconds ahead; from there on nothing but the scheduler plays it: STARTEX, each due inject
(`drill:{id}:inject:{n}`), flags, ENDEX and the AAR draft are its flow requests.

Lateness is measured from each inject's `due_at` (STARTEX as played + offset / scale) to:

- desk notice: the row's `delivered_at` (the hub's delivery claims it in the transaction that
  puts the notice on the city's desk);
- partner platform: the recipient's `delivered_at`, when the hub recorded the platform's
  acceptance of the exercise bulletin (after the platform's HTTP answer);
- MQTT (vehicle command or linkage alert): the arrival of the message at a subscriber on the
  exercise root (`hh-exercise/#`) of the broker.

The AAR draft time is from the moment ENDEX was due to the drill's `aar_drafted_at`.

Prints tables; exits 1 only on a real failure (an inject not delivered, a platform or subscriber
that got one twice or never, no AAR), never on a slow figure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from _common import (
    BENCH_ACTOR,
    machine,
    make_hub_app,
    percentile,
    print_table,
    start_broker,
    start_prefect_server,
)
from exchange import drain_prefect, quiet_logging
from flask import Flask

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from connectors.sims.partner import PartnerSimulator
from contracts.drills import DrillPlan
from contracts.mqtt import exercise_root, hub_state_topic, hub_subscriptions
from flows.context import use_app
from hub.app import settings_of
from hub.drills import rules
from hub.drills import services as drills
from hub.drills.models import Drill
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.models import City, FlowRequest, Role
from hub.partners import services as partners

CONTROLLING = "xuzhou"
ROOT = "hh"
SCALE = 30.0
ROUND_GAP_S = 120  # scenario seconds between rounds: 4 s of wall time at 30x
LEAD_IN = timedelta(seconds=6)  # STARTEX ahead of the approval
EXPECTED_WITHIN = "0:30:00"
TARGETS = {"desk": 1.0, "partner": 1.0, "mqtt": 2.0}
TARGET_AAR = 60.0
CHANNELS = ("desk", "partner", "mqtt")


class ExerciseListener:
    """A subscriber on the exercise root: when each message (by its payload's id) arrived."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[str, datetime] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-exercise-listener")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{exercise_root(ROOT)}/#", qos=1)
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the exercise listener did not subscribe within 10 s")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        at = datetime.now(UTC)
        try:
            found = json.loads(message.payload).get("id")
        except (ValueError, AttributeError):
            return
        if not isinstance(found, str):
            return
        with self._lock:
            if found in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[found] = at

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def msel(injects: int, slugs: Sequence[str], per_round: int = 10) -> tuple[str, int]:
    """Return the MSEL (CSV) and its last offset: rounds of ten, channels in turn.

    Desk notices and MQTT go to all ten cities in turn; platform injects to the nine other than
    the controlling city (one to itself would be a desk notice: a bulletin goes to other cities).
    """
    others = [s for s in slugs if s != CONTROLLING]
    lines = ["number,offset,city,vehicle,linkage_system,channel,message,expected_action,expected_within"]
    counters = dict.fromkeys(CHANNELS, 0)
    last = 0
    for index in range(injects):
        offset = (index // per_round) * ROUND_GAP_S
        last = offset
        channel = CHANNELS[index % 3]
        n = counters[channel]
        counters[channel] += 1
        at = f"{offset // 3600}:{offset % 3600 // 60:02d}:{offset % 60:02d}"
        text = f"基准注入{index + 1}"
        if channel == "desk":
            row = [slugs[n % len(slugs)], "", "", "desk_notice", text, "notice_read", EXPECTED_WITHIN]
        elif channel == "partner":
            row = [
                others[n % len(others)],
                "",
                "",
                "partner_platform",
                text,
                "receipt_signed",
                EXPECTED_WITHIN,
            ]
        elif n % 2 == 0:
            row = [
                slugs[n // 2 % len(slugs)],
                "v01",
                "",
                "mqtt_vehicle",
                text,
                "command_acked",
                EXPECTED_WITHIN,
            ]
        else:
            row = [slugs[n // 2 % len(slugs)], "", "fire119", "mqtt_linkage", text, "", ""]
        lines.append(",".join([str(index + 1), at, *row]))
    return "\r\n".join(lines) + "\r\n", last


def prepare(app: Flask) -> tuple[list[str], dict[str, PartnerSimulator]]:
    """Register each city's platform (a simulator), a vehicle and a 119 linkage system."""
    with app.app_context():
        cities = list(db.session.scalars(sa.select(City).order_by(City.slug)))
        sims = {
            c.slug: PartnerSimulator(c.slug, token=f"token-{c.slug}", seed=5, initial=(0, 0, 0)).start()
            for c in cities
        }
        for city in cities:
            partners.register(
                db.session,
                BENCH_ACTOR,
                city,
                sims[city.slug].url,
                f"token-{city.slug}",
                settings=settings_of(app),
            )
            fleet.register_vehicle(db.session, BENCH_ACTOR, city, "v01", f"{city.name_zh}指挥车")
            fleet.register_linkage_system(
                db.session, BENCH_ACTOR, city, "fire119", "119", f"{city.name_zh}119"
            )
        db.session.commit()
        slugs = [c.slug for c in cities]
        db.session.remove()
    return slugs, sims


def plan_drill(app: Flask, injects: int, slugs: list[str], per_round: int) -> int:
    """Plan, load and approve the drill as Xuzhou's coordinator; return its id."""
    text, last = msel(injects, slugs, per_round)
    with app.app_context():
        xuzhou = db.session.scalar(sa.select(City).where(City.slug == CONTROLLING))
        assert xuzhou is not None
        actor = Actor("user", "bench-controller", xuzhou.id, Role.COORDINATOR)
        startex = datetime.now(UTC).replace(microsecond=0) + LEAD_IN
        plan = DrillPlan.model_validate(
            {
                "name": "基准：十市防汛功能演练",
                "drill_type": "functional",
                "scope": "combined",
                "plans": ["淮海区域防汛应急预案"],
                "controlling_city": CONTROLLING,
                "participating_cities": slugs,
                "objectives": [
                    {"ref": "O1", "title": "信息传递", "critical_tasks": [{"ref": "T1", "title": "接报"}]}
                ],
                "startex": startex,
                # ENDEX one round after the last: the scenario's duration, played at SCALE.
                "endex": startex + timedelta(seconds=last + ROUND_GAP_S),
                "controllers": [{"name": "bench-controller", "city": CONTROLLING}],
            }
        )
        drill = drills.create(db.session, actor, plan, time_scale=SCALE)
        drills.import_msel(db.session, actor, drill.id, text.encode())
        drills.approve(db.session, actor, drill.id)
        db.session.commit()
        drill_id = drill.id
        db.session.remove()
    return drill_id


def wait_for_report(app: Flask, drill_id: int, timeout: float) -> datetime | None:
    """Wait until the drill's AAR is drafted; return when it was, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            drafted = db.session.scalar(sa.select(Drill.aar_drafted_at).where(Drill.id == drill_id))
            db.session.remove()
        if drafted is not None:
            return drafted
        time.sleep(0.2)
    return None


STAGES = ("due -> requested", "requested -> flow started", "flow started -> delivered")


def stages(app: Flask, drill_id: int, failures: list[str]) -> dict[str, list[float]]:
    """Return where each inject's time went: the wait for its flow request, for a flow thread, and
    the flow itself up to the delivery; a request that needed more than one attempt is reported."""
    spent: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with app.app_context():
        drill = drills.get(db.session, drill_id)
        keys = {rules.inject_key(drill_id, row.number): row for row in drill.injects}
        requests = db.session.scalars(sa.select(FlowRequest).where(FlowRequest.key.in_(list(keys))))
        for request in requests:
            row = keys[request.key]
            if request.attempts > 1:
                print(
                    f"  inject {row.number}: {request.attempts} attempts, last error {request.last_error!r}"
                )
            if row.due_at is None or request.started_at is None or row.delivered_at is None:
                continue
            spent[STAGES[0]].append((request.created_at - row.due_at).total_seconds())
            spent[STAGES[1]].append((request.started_at - request.created_at).total_seconds())
            spent[STAGES[2]].append((row.delivered_at - request.started_at).total_seconds())
        db.session.remove()
    return spent


def lateness(
    app: Flask, drill_id: int, listener: ExerciseListener, failures: list[str]
) -> tuple[dict[str, list[float]], float | None, float | None, list[tuple[float, int, str]]]:
    """Return each channel's lateness in seconds, ENDEX's lateness, the AAR's seconds after ENDEX,
    and every inject's (lateness, number, channel)."""
    late: dict[str, list[float]] = {channel: [] for channel in CHANNELS}
    each: list[tuple[float, int, str]] = []
    with app.app_context():
        drill = drills.get(db.session, drill_id)
        platform = drills.platform_deliveries(db.session, drill)
        for row in drill.injects:
            if row.state != rules.SlotState.DELIVERED.value or row.due_at is None or row.delivered_at is None:
                failures.append(f"inject {row.number} ({row.channel}) {row.state}, not delivered")
                continue
            if row.channel == "desk_notice":
                channel, reached = "desk", row.delivered_at
            elif row.channel == "partner_platform":
                channel, reached = "partner", platform.get(row.number, (0, 0, None))[2]
                if reached is None:
                    failures.append(f"inject {row.number}: no platform accepted it")
                    continue
            else:
                ref = (row.delivery_ref or "").split(":", 1)[-1]
                channel, reached = "mqtt", listener.arrivals.get(str(uuid.UUID(ref))) if ref else None
                if reached is None:
                    failures.append(f"inject {row.number}: {row.delivery_ref} never reached the subscriber")
                    continue
            seconds = (reached - row.due_at).total_seconds()
            late[channel].append(seconds)
            each.append((seconds, row.number, channel))
        endex_late = aar_after = None
        if drill.started_at is not None and drill.ended_at is not None:
            endex_due = drills.clock_of(drill).endex_due() or drill.ended_at
            endex_late = (drill.ended_at - endex_due).total_seconds()
            if drill.aar_drafted_at is not None:
                aar_after = (drill.aar_drafted_at - endex_due).total_seconds()
        db.session.remove()
    return late, endex_late, aar_after, each


def _s(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(values, fraction):.2f} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 injects instead of 100")
    parser.add_argument("--injects", type=int, help="injects in the MSEL (default 100; quick 30)")
    parser.add_argument("--per-round", type=int, default=10, help="injects due at once (default 10)")
    parser.add_argument(
        "--prefect-database-url",
        help="the Prefect server's database (default SQLite), e.g. postgresql+asyncpg://…/db with pg_trgm",
    )
    args = parser.parse_args(argv)
    injects = args.injects or (30 if args.quick else 100)
    per_round = args.per_round
    rounds = -(-injects // per_round)
    failures: list[str] = []
    print_table(
        f"Drill benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        [
            *machine(mqtt=True, prefect=True),
            ("injects", f"{injects} to ten cities: desk notice, partner platform, MQTT (vehicle/linkage)"),
            (
                "play",
                f"{rounds} rounds of {per_round}, {ROUND_GAP_S} s apart in scenario time, at {SCALE:g}x",
            ),
        ],
    )
    late: dict[str, list[float]] = {}
    spent: dict[str, list[float]] = {}
    endex_late = aar_after = None
    taken = repeated = 0
    with tempfile.TemporaryDirectory(prefix="bench-drill-") as tmp:
        server = start_prefect_server(Path(tmp) / "prefect", args.prefect_database_url)
        broker = start_broker(Path(tmp) / "broker")
        sims: dict[str, PartnerSimulator] = {}
        try:
            app = make_hub_app(Path(tmp) / "instance")
            from flows.launcher import FlowDispatcher, LocalLauncher
            from flows.mqtt_bridge import MqttBridge
            from flows.prefect_settings import disable_flow_heartbeats
            from flows.scheduler import Scheduler

            disable_flow_heartbeats()  # as the hub does (web.runner)
            importlib.import_module("flows.registry").flows()
            quiet_logging()
            use_app(app)
            slugs, sims = prepare(app)
            listener = ExerciseListener(broker.port)
            link = MqttLink(
                MqttLinkConfig(
                    url=broker.url,
                    client_id="hub-bench",
                    state_topic=hub_state_topic(ROOT, "bench"),
                    subscriptions=hub_subscriptions(ROOT),
                )
            ).start()
            link.wait_connected(30)
            bridge = MqttBridge(link, root=ROOT)
            bridge.start()
            app.extensions["mqtt_kicker"] = bridge  # as web.runner does
            dispatcher = FlowDispatcher(LocalLauncher())
            dispatcher.start(recover=True)
            scheduler = Scheduler(settings_of(app), wake=dispatcher)
            scheduler.start()
            try:
                drill_id = plan_drill(app, injects, slugs, per_round)
                play = LEAD_IN.total_seconds() + (rounds * ROUND_GAP_S) / SCALE
                if wait_for_report(app, drill_id, play + 180) is None:
                    failures.append("no AAR drafted within 180 s of the drill's planned end")
                time.sleep(1.0)  # the last MQTT arrivals, if any are still on their way
                late, endex_late, aar_after, each = lateness(app, drill_id, listener, failures)
                spent = stages(app, drill_id, failures)
            finally:
                scheduler.stop()
                dispatcher.stop()
                bridge.stop()
                link.stop()
                listener.stop()
            if listener.duplicates:
                failures.append(f"the subscriber got {listener.duplicates} MQTT messages twice")
            # Delivery is at least once and a platform keeps a bulletin once by its id (the inject's
            # run and the bulletin's own distribution may both deliver it): counted, not a failure.
            repeated = sum(sim.stats.bulletin_duplicates for sim in sims.values())
            taken = sum(sim.stats.bulletins for sim in sims.values())
            drain_prefect()
        finally:
            for sim in sims.values():
                sim.stop()
            use_app(None)
            broker.stop()
            server.stop()
    rows = []
    for channel in CHANNELS:
        values = late.get(channel, [])
        if values:
            rows.append(
                (
                    f"{channel} ({len(values)} injects), p50 / p99 / max",
                    f"{_s(values, 0.5)} / {_s(values, 0.99)} / {max(values):.2f} s"
                    f" (mean {statistics.fmean(values):.2f} s)",
                )
            )
    rows.append(("bulletins the platforms took (and got again)", f"{taken} ({repeated})"))
    rows.append(("ENDEX after it was due", f"{endex_late:.2f} s" if endex_late is not None else "—"))
    rows.append(("AAR drafted after ENDEX was due", f"{aar_after:.2f} s" if aar_after is not None else "—"))
    print_table("Lateness against each inject's due time", rows)
    print_table(
        "The five latest injects (round = (number - 1) // per-round + 1)",
        [
            (f"inject {number} ({channel})", f"{seconds:.2f} s")
            for seconds, number, channel in sorted(each)[-5:]
        ],
    )
    print_table(
        "Where an inject's time goes (all channels), p50 / p99",
        [(stage, f"{_s(values, 0.5)} / {_s(values, 0.99)}") for stage, values in spent.items() if values],
    )
    verdict = []
    for channel in CHANNELS:
        values = late.get(channel, [])
        if values:
            p99 = percentile(values, 0.99)
            target = TARGETS[channel]
            verdict.append(
                (f"{channel}: p99 within {target:g} s", "met" if p99 <= target else f"missed ({p99:.2f} s)")
            )
    if aar_after is not None:
        verdict.append(
            (f"AAR within {TARGET_AAR:g} s of ENDEX", "met" if aar_after <= TARGET_AAR else "missed")
        )
    print_table("Targets", verdict)
    for failure in failures:
        print(f"FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
