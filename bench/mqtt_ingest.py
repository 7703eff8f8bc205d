"""Benchmark: how fast the hub persists MQTT telemetry, and how late, against a bare subscriber.

Run from the repository root: `.venv/bin/python bench/mqtt_ingest.py [--quick] [--rounds N]
[--workers 2 3] [--database-url URL] [--profile]`. It starts its own Mosquitto (hub settings, free
port, temporary folder) and a fresh SQLite database (WAL, checkpointed in the background as `hub
run` does) migrated with the project's migrations, with the ten cities and the vehicles; with
`--database-url` an empty database of yours (PostgreSQL) instead.

1. Bare subscriber: a paho client (QoS 1, `json.loads` in `on_message`, automatic acks) with a
   persistent session is away while publisher processes put M telemetry messages into its session;
   it then reconnects and is timed until it has all M.
2. Hub: the same for the hub's path (`MqttLink` with `manual_ack` and its bounded queue, the
   `MqttBridge` writer, `ingest.apply_batch`, the commit, the acks): timed from reconnect until
   the commit that holds the M-th row. Rows must be M and distinct. Steps 1 and 2 take turns for
   `--rounds` rounds (the machine's speed drifts); the ratio compares the medians.
3. Latency at load: 200 vehicles (MQTT clients in two publisher processes) at 1 Hz while the hub
   runs; from `Telemetry.at` (set just before each publish) to the return of `MqttBridge.write`,
   which is after the batch's commit. Also the hub process's CPU over the window.
4. Where the hub's time goes: CPU by thread during step 2, and the writer's steps (decode,
   apply_batch, commit) timed on batches like those of step 2.
5. Ingest workers: N processes running `flows.ingest_worker.run_worker` on the shared
   subscription, timed like step 2 from the moment they are told to connect, for each N of
   `--workers` and each round.

Prints tables; exits 1 only on a real failure (lost or doubled rows), never on a slow figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from _common import (
    machine,
    make_hub_app,
    percentile,
    print_table,
    process_cpu,
    register_vehicles,
    start_broker,
    thread_cpu,
)

from connectors.mqtt_link import InboundMessage, MqttLink, MqttLinkConfig
from contracts.mqtt import (
    Telemetry,
    decode_message,
    encode,
    hub_state_topic,
    hub_subscriptions,
    telemetry_topic,
)
from flows.context import current_app, use_app
from flows.ingest_worker import settle_sessions
from flows.mqtt_bridge import MqttBridge
from hub.app import settings_of
from hub.config import Settings
from hub.extensions import db
from hub.fleet import ingest
from hub.runtime import Periodic
from web.runner import wal_checkpointer

ROOT = "hh"
VEHICLES = 200
SEQ_BURST_BARE = 0
SEQ_BURST_HUB = 1_000_000
SEQ_LIVE = 2_000_000
SEQ_PHASES = 3_000_000
SEQ_BURST_WORKERS = 4_000_000
SEQ_ROUND = 10_000  # sequence numbers a burst of up to 2,000,000 messages uses, per vehicle
PUBLISHERS = 2
# Messages a burst publisher keeps unacknowledged at most (paho refuses past 65,535).
PUBLISH_WINDOW = 10_000


# Publisher processes ---------------------------------------------------------------------------


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _telemetry(code: str, seq: int, at: datetime | None = None) -> bytes:
    return encode(
        Telemetry(
            vehicle=code,
            lat=round(34.0 + (seq % 1000) / 1000 + 0.000123, 6),
            lon=round(117.0 + (seq % 997) / 1000 + 0.000321, 6),
            speed_kmh=72.5,
            heading=float(seq % 360),
            at=at or datetime.now(UTC),
            seq=seq,
        )
    )


def burst_publisher(
    port: int, vehicles: list[tuple[str, str]], worker: int, count: int, seq_base: int, out: Any
) -> None:
    """Publish `count` QoS 1 telemetry messages as fast as the broker takes them."""
    messages = []
    for index in range(count):
        city, code = vehicles[(index * PUBLISHERS + worker) % len(vehicles)]
        seq = seq_base + (index * PUBLISHERS + worker) // len(vehicles)
        messages.append((telemetry_topic(ROOT, city, code), _telemetry(code, seq)))
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    for sent, (topic, payload) in enumerate(messages):
        while sent - acked > PUBLISH_WINDOW:
            time.sleep(0.001)
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
    deadline = time.monotonic() + 60
    while acked < count and time.monotonic() < deadline:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    out.put({"worker": worker, "acked": acked, "seconds": elapsed, "bytes": len(messages[0][1])})


def vehicle_emulator(
    port: int,
    vehicles: list[tuple[str, str, float]],
    seconds: float,
    control: Any,
    out: Any,
) -> None:
    """Run one MQTT client per vehicle; each reports telemetry once a second at its own phase."""
    clients: list[tuple[mqtt.Client, str, str, float]] = []
    connected = threading.Semaphore(0)
    acked = 0
    lock = threading.Lock()

    def on_connect(*_args: Any) -> None:
        connected.release()

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1

    for city, code, phase in vehicles:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-veh-{city}-{code}")
        client.on_socket_open = _nodelay
        client.on_connect = on_connect
        client.on_publish = on_publish
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        clients.append((client, telemetry_topic(ROOT, city, code), code, phase))
    for _ in clients:
        if not connected.acquire(timeout=30):
            raise RuntimeError("emulated vehicles did not connect within 30 s")
    out.put({"ready": len(clients)})
    go_at = control.get(timeout=60)
    cpu_before = process_cpu()
    published = 0
    lags: list[float] = []
    schedule = sorted(clients, key=lambda entry: entry[3])
    for tick in range(round(seconds)):
        for client, topic, code, phase in schedule:
            due = go_at + tick + phase
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            lags.append(time.time() - due)
            info = client.publish(topic, _telemetry(code, SEQ_LIVE + tick), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
            published += 1
    cpu = process_cpu() - cpu_before
    deadline = time.monotonic() + 30
    while acked < published and time.monotonic() < deadline:
        time.sleep(0.01)
    for client, *_ in clients:
        client.disconnect()
        client.loop_stop()
    out.put({"published": published, "acked": acked, "max_lag": max(lags), "cpu": cpu})


class CountingBridge(MqttBridge):
    """The hub's bridge unchanged, but adding each commit's telemetry to a counter shared by processes."""

    # Set in the worker process: a multiprocessing Value, and the (time, telemetry) of each commit.
    committed: ClassVar[Any] = None
    commits: ClassVar[list[tuple[float, int]]] = []

    def write(self, batch: list[InboundMessage]) -> Counter[str]:
        """Write as the hub does, then count: `write` returns after the commit."""
        counts = super().write(batch)
        self.commits.append((time.time(), counts["telemetry"]))
        with self.committed.get_lock():
            self.committed.value += counts["telemetry"]
        return counts


def ingest_worker_process(
    env: dict[str, str], index: int, committed: Any, go: Any, stop: Any, out: Any
) -> None:
    """Run the hub's ingest worker `index` (`flows.ingest_worker.run_worker`) once told to go."""
    from flows.context import current_app as worker_app
    from flows.ingest_worker import run_worker
    from hub.config import settings_from_env

    quiet_logging()
    os.environ.update(env)  # as `hub run` starts its workers: settings from the environment
    settings = settings_from_env()
    use_app(worker_app())  # builds the app and its engine before the clock starts
    CountingBridge.committed = committed
    stopping = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    out.put({"ready": index})
    go.wait()
    cpu_before = process_cpu()
    counts = run_worker(settings, index, stopping, bridge_class=CountingBridge)
    out.put(
        {
            "index": index,
            "telemetry": counts["telemetry"],
            "cpu": process_cpu() - cpu_before,
            "commits": CountingBridge.commits,
        }
    )


# The hub, instrumented -------------------------------------------------------------------------


@dataclass
class Commit:
    """One batch the writer committed: when, and what."""

    at: float
    batch: list[InboundMessage]
    telemetry: int
    seconds: float


class TimedBridge(MqttBridge):
    """The hub's bridge unchanged, but noting the wall time right after each batch's commit."""

    def __init__(self, link: MqttLink, *, root: str, profile: bool = False) -> None:
        super().__init__(link, root=root)
        self.commits: list[Commit] = []
        self.write_seconds = 0.0
        self.target = 0
        self.reached = threading.Event()
        self.profiler = cProfile.Profile() if profile else None
        self._telemetry = 0

    def expect(self, telemetry: int) -> None:
        """Set `reached` once this many more telemetry messages have been committed."""
        self.target = self._telemetry + telemetry
        self.reached.clear()

    def write(self, batch: list[InboundMessage]) -> Counter[str]:
        """Write as the hub does, then note the time: `write` returns after the commit."""
        started = time.perf_counter()
        counts = super().write(batch)
        committed = time.time()
        took = time.perf_counter() - started
        self.write_seconds += took
        self._telemetry += counts["telemetry"]
        self.commits.append(Commit(committed, batch, counts["telemetry"], took))
        if self.target and self._telemetry >= self.target and not self.reached.is_set():
            self.reached.set()
            if self.profiler is not None:
                # Profile the burst only; this runs on the writer thread, where it was enabled.
                self.profiler.disable()
        return counts

    def _write_loop(self) -> None:
        if self.profiler is None:
            super()._write_loop()
            return
        self.profiler.enable()
        super()._write_loop()


class TimedAck:
    """Wraps `MqttLink.ack` to add up the time the writer spends acknowledging."""

    def __init__(self, link: MqttLink) -> None:
        self._ack = link.ack
        self.seconds = 0.0
        self.messages = 0

    def __call__(self, messages: list[InboundMessage]) -> int:
        """Acknowledge as the link does."""
        started = time.perf_counter()
        sent = self._ack(messages)
        self.seconds += time.perf_counter() - started
        self.messages += sent
        return sent


def thread_id(name: str) -> int | None:
    """Return the native id of this process's thread with that name, if it runs."""
    found = next((t for t in threading.enumerate() if t.name == name), None)
    return found.native_id if found else None


def link_config(port: int) -> MqttLinkConfig:
    """Return the hub's link settings, as `web.runner` builds them (no credentials here)."""
    return MqttLinkConfig(
        url=f"mqtt://127.0.0.1:{port}",
        client_id="hub-bench",
        state_topic=hub_state_topic(ROOT, "bench"),
        subscriptions=hub_subscriptions(ROOT),
    )


# Steps -----------------------------------------------------------------------------------------


def publish_burst(
    ctx: mp.context.SpawnContext, port: int, vehicles: list[tuple[str, str]], m: int, seq: int
) -> dict:
    """Publish m messages from separate processes into the waiting sessions; return their figures."""
    out = ctx.Queue()
    share = [m // PUBLISHERS + (1 if w < m % PUBLISHERS else 0) for w in range(PUBLISHERS)]
    workers = [
        ctx.Process(target=burst_publisher, args=(port, vehicles, w, share[w], seq, out), daemon=True)
        for w in range(PUBLISHERS)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    acked = sum(r["acked"] for r in results)
    if acked != m:
        raise SystemExit(f"the broker acknowledged {acked} of {m} published messages")
    return {"publish_seconds": max(r["seconds"] for r in results), "bytes": results[0]["bytes"]}


def bare_subscriber(port: int, m: int, publish: Any) -> dict:
    """Time a bare paho subscriber receiving m messages queued in its persistent session."""
    client_id = "bench-bare"
    subscriptions = list(hub_subscriptions(ROOT))
    primer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    primer.connect("127.0.0.1", port)
    primer.subscribe(subscriptions)
    subscribed = threading.Event()
    primer.on_subscribe = lambda *args: subscribed.set()
    primer.loop_start()
    if not subscribed.wait(10):
        raise SystemExit("the bare subscriber's subscription was not acknowledged")
    primer.disconnect()
    primer.loop_stop()

    burst = publish()

    received = 0
    last = 0.0
    done = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received, last
        json.loads(message.payload)
        received += 1
        if received == m:
            last = time.perf_counter()
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_socket_open = _nodelay
    client.on_message = on_message
    cpu_before = process_cpu()
    started = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_start()
    finished = done.wait(max(60.0, m / 500))
    cpu = process_cpu() - cpu_before
    time.sleep(0.5)  # anything beyond m would be a duplicate
    client.disconnect()
    client.loop_stop()
    # End the session so the broker stops queueing the next steps' messages for it.
    clear_session(port, client_id)
    if not finished:
        return {"received": received, "rate": 0.0, "seconds": float("nan"), "cpu": cpu, **burst}
    seconds = last - started
    return {"received": received, "rate": m / seconds, "seconds": seconds, "cpu": cpu, **burst}


def hub_burst(port: int, m: int, publish: Any, profile: bool) -> tuple[MqttLink, TimedBridge, dict]:
    """Time the hub persisting m messages queued in its persistent session; leave it running."""
    primer = MqttLink(link_config(port)).start()
    primer.wait_connected(10)
    primer.stop()

    burst = publish()

    link = MqttLink(link_config(port))
    ack = TimedAck(link)
    link.ack = ack  # type: ignore[method-assign]
    bridge = TimedBridge(link, root=ROOT, profile=profile)
    bridge.expect(m)
    bridge.start()
    writer = next(t for t in threading.enumerate() if t.name == "hub-mqtt-writer")
    cpu_before = process_cpu()
    writer_before = thread_cpu(writer.native_id or 0)
    started = time.perf_counter()
    started_wall = time.time()
    link.start()
    network = None
    while network is None and time.perf_counter() - started < 10:
        network = next((t for t in threading.enumerate() if t.name == "paho-mqtt-client-hub-bench"), None)
    # The network thread starts with link.start(); it has done next to nothing before this.
    network_before = thread_cpu(network.native_id or 0) if network else 0.0
    finished = bridge.reached.wait(max(90.0, m / 300))
    cpu = process_cpu() - cpu_before
    writer_cpu = thread_cpu(writer.native_id or 0) - writer_before
    network_cpu = thread_cpu(network.native_id or 0) - network_before if network else float("nan")
    last = started_wall
    total = 0
    for commit in bridge.commits:
        total += commit.telemetry
        if total >= m:
            last = commit.at
            break
    seconds = last - started_wall if finished else float("nan")
    batches = [len(c.batch) for c in bridge.commits if c.telemetry]
    figures = {
        "rate": m / seconds if finished else 0.0,
        "seconds": seconds,
        "finished": finished,
        "cpu": cpu,
        "writer_cpu": writer_cpu,
        "network_cpu": network_cpu,
        "write_seconds": bridge.write_seconds,
        "ack_seconds": ack.seconds,
        "acked": ack.messages,
        "batches": len(batches),
        "batch_mean": statistics.fmean(batches) if batches else 0.0,
        "batch_max": max(batches, default=0),
        "delivered": sum(c.telemetry for c in bridge.commits),
        **burst,
    }
    return link, bridge, figures


def workers_burst(
    ctx: mp.context.SpawnContext,
    settings: Settings,
    workers: int,
    m: int,
    publish: Any,
    broker_pid: int | None,
) -> dict:
    """Time N ingest worker processes persisting m messages queued in their shared sessions."""
    settle_sessions(settings, workers)  # subscribes each worker's session, as `hub run` does
    burst = publish()
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    committed = ctx.Value("q", 0)
    env = settings.process_env()
    processes = [
        ctx.Process(target=ingest_worker_process, args=(env, i, committed, go, stop, out), daemon=True)
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        out.get(timeout=120)
    broker_before = process_cpu(broker_pid) if broker_pid else 0.0
    started_wall = time.time()
    go.set()
    deadline = time.monotonic() + max(90.0, m / 300)
    while committed.value < m and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = committed.value >= m
    broker_cpu = process_cpu(broker_pid) - broker_before if broker_pid else float("nan")
    stop.set()
    results = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    # The clock stops at the commit that brought the workers together to m, whichever it was.
    last, total = started_wall, 0
    for at, telemetry in sorted(c for r in results for c in r["commits"]):
        total += telemetry
        if total >= m:
            last = at
            break
    seconds = last - started_wall
    return {
        "workers": workers,
        "rate": m / seconds if finished else 0.0,
        "seconds": seconds,
        "finished": finished,
        "shares": sorted(r["telemetry"] for r in results),
        "worker_cpu": sum(r["cpu"] for r in results),
        "broker_cpu": broker_cpu,
        **burst,
    }


def end_session(port: int, link: MqttLink, bridge: MqttBridge) -> None:
    """Stop the hub's link and end its session, so the broker queues nothing more for it."""
    bridge.stop()
    link.stop()
    clear_session(port, link.config.client_id)


def clear_session(port: int, client_id: str) -> None:
    """End a client's persistent session: a connect with clean_session drops it (MQTT 3.1.1 §3.1.2.4)."""
    cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleaner.connect("127.0.0.1", port)
    cleaner.disconnect()


def count_rows(seq_from: int, seq_to: int) -> tuple[int, int]:
    """Return (rows, distinct vehicle+seq) of vehicle_positions with seq in [from, to)."""
    with current_app().app_context():
        row = db.session.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT vehicle_id || ':' || seq) FROM vehicle_positions "
                "WHERE seq >= :low AND seq < :high"
            ),
            {"low": seq_from, "high": seq_to},
        ).one()
        db.session.remove()
    return int(row[0]), int(row[1])


def live_latency(
    ctx: mp.context.SpawnContext,
    port: int,
    vehicles: list[tuple[str, str]],
    bridge: TimedBridge,
    broker_pid: int | None,
    seconds: float,
) -> dict:
    """Run 200 vehicles at 1 Hz against the running hub; time publish to commit."""
    out = ctx.Queue()
    workers = []
    controls = []
    for w in range(PUBLISHERS):
        mine = [
            (city, code, index / len(vehicles))
            for index, (city, code) in enumerate(vehicles)
            if index % PUBLISHERS == w
        ]
        control = ctx.Queue()
        process = ctx.Process(target=vehicle_emulator, args=(port, mine, seconds, control, out), daemon=True)
        process.start()
        workers.append(process)
        controls.append(control)
    ready = sum(out.get(timeout=90)["ready"] for _ in workers)
    go_at = time.time() + 1.0
    first_commit = len(bridge.commits)
    for control in controls:
        control.put(go_at)
    writer, network = thread_id("hub-mqtt-writer"), thread_id("paho-mqtt-client-hub-bench")
    time.sleep(max(0.0, go_at - time.time()))
    cpu_before, broker_before = process_cpu(), process_cpu(broker_pid) if broker_pid else 0.0
    writer_before = thread_cpu(writer) if writer else 0.0
    network_before = thread_cpu(network) if network else 0.0
    time.sleep(max(0.0, go_at + seconds - time.time()))
    hub_cpu = process_cpu() - cpu_before
    writer_cpu = thread_cpu(writer) - writer_before if writer else float("nan")
    network_cpu = thread_cpu(network) - network_before if network else float("nan")
    broker_cpu = process_cpu(broker_pid) - broker_before if broker_pid else float("nan")
    results = [out.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=10)
    published = sum(r["published"] for r in results)
    acked = sum(r["acked"] for r in results)
    # Wait until the writer has committed all that was published (or give up after 15 s).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows, _ = count_rows(SEQ_LIVE, SEQ_PHASES)
        if rows >= published:
            break
        time.sleep(0.1)
    rows, distinct = count_rows(SEQ_LIVE, SEQ_PHASES)

    latencies: list[float] = []
    receive: list[float] = []
    batch_sizes: list[int] = []
    batch_seconds: list[float] = []
    seen: set[tuple[str, int]] = set()
    for commit in bridge.commits[first_commit:]:
        batch_sizes.append(len(commit.batch))
        batch_seconds.append(commit.seconds)
        for message in commit.batch:
            if not message.topic.endswith("/telemetry"):
                continue
            body = json.loads(message.payload)
            if body["seq"] < SEQ_LIVE:
                continue
            key = (message.topic, body["seq"])
            if key in seen:
                continue
            seen.add(key)
            sent = datetime.fromisoformat(body["at"]).timestamp()
            latencies.append(commit.at - sent)
            receive.append(message.received_at.timestamp() - sent)
    return {
        "vehicles": ready,
        "seconds": seconds,
        "published": published,
        "acked": acked,
        "rows": rows,
        "distinct": distinct,
        "lost": published - distinct,
        "latencies": latencies,
        "receive": receive,
        "batch_sizes": batch_sizes,
        "batch_seconds": batch_seconds,
        "hub_cpu": hub_cpu,
        "writer_cpu": writer_cpu,
        "network_cpu": network_cpu,
        "broker_cpu": broker_cpu,
        "emulator_cpu": sum(r["cpu"] for r in results),
        "max_lag": max(r["max_lag"] for r in results),
    }


def writer_steps(vehicles: list[tuple[str, str]], batches: int, size: int) -> dict:
    """Time the writer's steps on batches like the burst's: decode, apply_batch, commit."""
    totals = Counter[str]()
    n = 0
    seq = SEQ_PHASES
    for _ in range(batches):
        batch = []
        for index in range(size):
            city, code = vehicles[index % len(vehicles)]
            payload = _telemetry(code, seq + index // len(vehicles))
            batch.append(
                InboundMessage(
                    topic=telemetry_topic(ROOT, city, code),
                    payload=payload,
                    qos=1,
                    retain=False,
                    mid=index + 1,
                    dup=False,
                    connection=1,
                    received_at=datetime.now(UTC),
                    received_monotonic=time.monotonic(),
                )
            )
        seq += size // len(vehicles) + 1
        t0 = time.perf_counter()
        for message in batch:
            json.loads(message.payload)
        t1 = time.perf_counter()
        decoded = []
        for message in batch:
            address, payload = decode_message(message.topic, message.payload, root=ROOT)
            decoded.append(ingest.Inbound(address, payload, message.payload))
        t2 = time.perf_counter()
        with current_app().app_context():
            session = db.session()
            t3 = time.perf_counter()
            ingest.apply_batch(session, decoded, root=ROOT)
            t4 = time.perf_counter()
            session.commit()
            t5 = time.perf_counter()
            db.session.remove()
        totals.update({"json": t1 - t0, "decode": t2 - t1, "apply": t4 - t3, "commit": t5 - t4})
        n += len(batch)
    return {key: value / n * 1e6 for key, value in totals.items()}


def quiet_logging() -> None:
    """Show warnings and errors only; alembic's logging set-up during the migration is undone."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.disabled = False
            logger.setLevel(logging.NOTSET)
    # The link warns when its queue fills: during a burst that is the backpressure working.
    logging.getLogger("connectors.mqtt_link").setLevel(logging.ERROR)


# Report ----------------------------------------------------------------------------------------


def us(value: float) -> str:
    """Format seconds as microseconds."""
    return f"{value * 1e6:,.1f} µs"


def ms(value: float) -> str:
    """Format seconds as milliseconds."""
    return f"{value * 1e3:,.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, a 10 s latency window")
    parser.add_argument("--messages", type=int, help="messages in the burst (default 40,000; quick 15,000)")
    parser.add_argument("--seconds", type=float, help="latency window (default 30; quick 10)")
    parser.add_argument("--profile", action="store_true", help="cProfile the writer thread in the burst")
    parser.add_argument("--rounds", type=int, help="throughput rounds, medians reported (default 3; quick 1)")
    parser.add_argument(
        "--database-url",
        help="an empty database to use instead of a fresh SQLite file, e.g. postgresql+psycopg2://…",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[2, 3],
        help="ingest worker counts to time on the shared subscription (default 2 3; none to skip)",
    )
    args = parser.parse_args(argv)
    m = args.messages or (15_000 if args.quick else 40_000)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    rounds = args.rounds or (1 if args.quick else 3)

    ctx = mp.get_context("spawn")
    failures: list[str] = []
    print_table(
        f"MQTT ingest benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        [
            *machine(),
            ("database", "PostgreSQL (--database-url)" if args.database_url else "SQLite, WAL"),
            ("burst", f"{m:,} messages"),
            ("latency window", f"{seconds:.0f} s"),
        ],
    )

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        broker = start_broker(Path(tmp) / "broker")
        link: MqttLink | None = None
        bridge: TimedBridge | None = None
        checkpointer: Periodic | None = None
        try:
            app = make_hub_app(Path(tmp) / "instance", args.database_url)
            quiet_logging()
            use_app(app)
            if args.database_url is None:
                checkpointer = wal_checkpointer(app).start()  # as `hub run` does on SQLite
            vehicles = register_vehicles(app, VEHICLES)

            settings = Settings(
                secret_key="bench-" + os.urandom(8).hex(),
                encryption_key=settings_of(app).encryption_key,
                instance_path=Path(tmp) / "instance",
                database_url=args.database_url,
                mqtt_url=broker.url,
                mqtt_root=ROOT,
                hub_id="bench",
            )
            # The machine's speed drifts from second to second, so the steps take turns, round
            # after round, and the ratios compare medians.
            bares: list[dict] = []
            hubs: list[dict] = []
            pooled: dict[int, list[dict]] = {n: [] for n in args.workers}
            for round_ in range(rounds):
                offset = round_ * SEQ_ROUND
                bare = bare_subscriber(
                    broker.port,
                    m,
                    lambda o=offset: publish_burst(ctx, broker.port, vehicles, m, SEQ_BURST_BARE + o),
                )
                if bare["received"] != m:
                    failures.append(f"bare subscriber received {bare['received']} of {m}")
                bares.append(bare)
                link, bridge, hub = hub_burst(
                    broker.port,
                    m,
                    lambda o=offset: publish_burst(ctx, broker.port, vehicles, m, SEQ_BURST_HUB + o),
                    args.profile and round_ == rounds - 1,
                )
                rows, distinct = count_rows(SEQ_BURST_HUB + offset, SEQ_BURST_HUB + offset + SEQ_ROUND)
                if not hub["finished"] or rows != m or distinct != m:
                    failures.append(f"hub stored {rows} rows ({distinct} distinct) of {m}")
                hubs.append({**hub, "rows": rows, "distinct": distinct})
                if round_ < rounds - 1:
                    # Only the last round's hub stays, for the latency step.
                    end_session(broker.port, link, bridge)
            bare_rate = statistics.median(b["rate"] for b in bares)
            hub_rate = statistics.median(h["rate"] for h in hubs)
            ratio = hub_rate / bare_rate if bare_rate else float("nan")
            print_table(
                "1-2. Throughput, QoS 1, messages queued in the session while the subscriber was away",
                [
                    ("payload", f"{bare['bytes']} bytes of Telemetry JSON"),
                    ("publishers (2 processes)", f"{m / bare['publish_seconds']:,.0f} msg/s into sessions"),
                    ("rounds (bare, hub, bare, hub, …)", rounds),
                    ("bare subscriber, median", f"{bare_rate:,.0f} msg/s"),
                    ("  each round", ", ".join(f"{b['rate']:,.0f}" for b in bares)),
                    ("bare subscriber CPU", f"{us(bare['cpu'] / m)} a message (last round)"),
                    ("hub, committed, median", f"{hub_rate:,.0f} msg/s"),
                    ("  each round", ", ".join(f"{h['rate']:,.0f}" for h in hubs)),
                    ("ratio hub / bare (medians)", f"{ratio:.0%} (target ≥ 90 %)"),
                    (
                        "rows, distinct",
                        ", ".join(f"{h['rows']:,}/{h['distinct']:,}" for h in hubs) + f" (each {m:,})",
                    ),
                    ("redelivered to writer", f"{sum(h['delivered'] - m for h in hubs):,}"),
                    (
                        "batches (last round)",
                        f"{hub['batches']:,}, mean {hub['batch_mean']:.0f}, max {hub['batch_max']}",
                    ),
                ],
            )
            print_table(
                "4a. Hub CPU during the burst, per message",
                [
                    ("whole process", us(hub["cpu"] / m)),
                    ("paho network thread", us(hub["network_cpu"] / m)),
                    ("writer thread", us(hub["writer_cpu"] / m)),
                    ("writer wall time in write()", us(hub["write_seconds"] / m)),
                    ("writer wall time in ack()", us(hub["ack_seconds"] / max(hub["acked"], 1))),
                    ("bare subscriber, whole process", us(bare["cpu"] / m)),
                ],
            )
            if bridge.profiler is not None:
                stream = io.StringIO()
                pstats.Stats(bridge.profiler, stream=stream).sort_stats("tottime").print_stats(20)
                print("\nWriter thread profile (cProfile, by own time)\n" + stream.getvalue())

            live = live_latency(ctx, broker.port, vehicles, bridge, broker.pid, seconds)
            if live["lost"] or live["rows"] != live["distinct"]:
                doubled = live["rows"] - live["distinct"]
                failures.append(f"latency run: {live['lost']} lost, {doubled} doubled")
            lat = live["latencies"]
            rec = live["receive"]
            print_table(
                f"3. Latency at load: {live['vehicles']} vehicles at 1 Hz for {seconds:.0f} s",
                [
                    ("published / acked by broker", f"{live['published']:,} / {live['acked']:,}"),
                    ("committed rows (distinct)", f"{live['rows']:,} ({live['distinct']:,})"),
                    ("lost", live["lost"]),
                    ("publish -> commit p50", ms(percentile(lat, 0.50))),
                    ("publish -> commit p99", f"{ms(percentile(lat, 0.99))} (target < 20 ms)"),
                    ("publish -> commit max", ms(max(lat, default=float("nan")))),
                    ("publish -> queued p50", ms(percentile(rec, 0.5))),
                    ("publish -> queued p99", ms(percentile(rec, 0.99))),
                    (
                        "batch size mean / max",
                        f"{statistics.fmean(live['batch_sizes']):.2f} / {max(live['batch_sizes'])}"
                        if live["batch_sizes"]
                        else "-",
                    ),
                    ("write() per batch p50", ms(percentile(live["batch_seconds"], 0.5))),
                    ("write() per batch p99", ms(percentile(live["batch_seconds"], 0.99))),
                    ("hub process CPU", f"{live['hub_cpu'] / seconds:.1%} of one core"),
                    ("  writer thread", f"{live['writer_cpu'] / seconds:.1%}"),
                    ("  paho network thread", f"{live['network_cpu'] / seconds:.1%}"),
                    ("broker CPU", f"{live['broker_cpu'] / seconds:.1%} of one core"),
                    ("emulators CPU (2 processes)", f"{live['emulator_cpu'] / seconds:.1%} of one core"),
                    ("emulator schedule lag max", ms(live["max_lag"])),
                ],
            )
            # The single-process hub goes, or its own telemetry subscription would take copies.
            end_session(broker.port, link, bridge)
            bridge = link = None
            best_ratio: tuple[int, float] | None = None
            for round_ in range(rounds):
                for index, workers in enumerate(args.workers):
                    seq = SEQ_BURST_WORKERS + (round_ * len(args.workers) + index) * SEQ_ROUND
                    result = workers_burst(
                        ctx,
                        settings,
                        workers,
                        m,
                        lambda seq=seq: publish_burst(ctx, broker.port, vehicles, m, seq),
                        broker.pid,
                    )
                    rows, distinct = count_rows(seq, seq + SEQ_ROUND)
                    if not result["finished"] or rows != m or distinct != m:
                        failures.append(f"{workers} workers stored {rows} rows ({distinct} distinct) of {m}")
                    pooled[workers].append({**result, "rows": rows, "distinct": distinct})
            if args.workers:
                rows_5: list[tuple[str, object]] = []
                for workers, results in pooled.items():
                    rate = statistics.median(r["rate"] for r in results)
                    last = results[-1]
                    rows_5 += [
                        (
                            f"{workers} workers, committed, median",
                            f"{rate:,.0f} msg/s, {rate / bare_rate:.0%} of bare",
                        ),
                        ("  each round", ", ".join(f"{r['rate']:,.0f}" for r in results)),
                        ("  reports per worker (last round)", ", ".join(f"{n:,}" for n in last["shares"])),
                        ("  rows, distinct", ", ".join(f"{r['rows']:,}/{r['distinct']:,}" for r in results)),
                        ("  workers' CPU a message (last round)", us(last["worker_cpu"] / m)),
                        ("  broker's CPU a message (last round)", us(last["broker_cpu"] / m)),
                    ]
                    if best_ratio is None or rate / bare_rate > best_ratio[1]:
                        best_ratio = (workers, rate / bare_rate)
                print_table("5. Ingest workers: N processes on one shared subscription", rows_5)
        finally:
            if bridge is not None:
                bridge.stop()
            if link is not None:
                link.stop()
            if checkpointer is not None:
                checkpointer.stop()

        steps = writer_steps(vehicles, batches=10, size=500)
        print_table(
            "4b. Writer steps per message, batches of 500 (outside MQTT)",
            [
                ("json.loads (what the bare subscriber does)", f"{steps['json']:.1f} µs"),
                ("decode_message (topic + pydantic)", f"{steps['decode']:.1f} µs"),
                ("ingest.apply_batch (peers, INSERT, latest UPDATE)", f"{steps['apply']:.1f} µs"),
                ("COMMIT", f"{steps['commit']:.1f} µs"),
            ],
        )
        use_app(None)
        broker.stop()

    verdict = [
        ("throughput ≥ 90 % of bare, one process", "met" if ratio >= 0.9 else f"missed ({ratio:.0%})"),
        *(
            [
                (
                    f"throughput ≥ 90 % of bare, {best_ratio[0]} ingest workers",
                    "met" if best_ratio[1] >= 0.9 else f"missed ({best_ratio[1]:.0%})",
                )
            ]
            if best_ratio
            else []
        ),
        ("p99 < 20 ms at 200 vehicles", "met" if percentile(lat, 0.99) < 0.020 else "missed"),
        ("no message lost or doubled", "met" if not failures else "FAILED"),
    ]
    print_table("Targets", verdict)
    for failure in failures:
        print(f"FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
