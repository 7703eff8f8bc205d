"""Ingest workers: extra processes that store the vehicles' telemetry from a shared subscription.

One Python process receives and stores only so many position reports a second, because paho's
receive path and the writer share one interpreter lock (docs/PERFORMANCE.md). With
`HUB_MQTT_INGEST_WORKERS=N` the hub starts N worker processes instead, each with its own MQTT 5
session (`hub-<id>-ingest-<n>`) in the shared-subscription group `hub-<id>-ingest-<tag>`, its own
writer and its own database connection; the broker gives each report to one of them. Everything
else (status, connection state, acks, linkage events, the outbox) stays with the hub's own link:
retained messages are never sent to a shared subscription, and those are low in volume.

Mosquitto keeps queueing a member's share while the member is away with its session, so a worker
that dies must come back under the same client id (the hub restarts it), and the session of a
worker that is no longer wanted is drained into the database and then ended (`settle_sessions`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from connectors.mqtt_link import MqttLink, MqttLinkConfig, MqttLinkStoppedError
from contracts.mqtt import shared_telemetry_subscriptions
from flows.mqtt_bridge import MqttBridge
from hub.config import MAX_INGEST_WORKERS, Settings

log = logging.getLogger(__name__)


def ingest_group(settings: Settings) -> str:
    """Return the shared-subscription group of this hub's ingest workers.

    Mosquitto's ACL file cannot refuse a subscription, only each message sent to it, and a message
    the broker hands to a group member that may not read it is dropped, not given to another
    member. A vehicle that joined the group could so make the hub lose reports. The group's name
    therefore carries a tag derived from the hub's broker password, which no peer knows.
    """
    secret = f"{settings.hub_id}\0{settings.mqtt_password or ''}".encode()
    tag = hashlib.sha256(b"huaihai-hub ingest group\0" + secret).hexdigest()[:20]
    return f"hub-{settings.hub_id}-ingest-{tag}"


def worker_client_id(hub_id: str, index: int) -> str:
    """Return the fixed client id (and so the session) of one ingest worker."""
    return f"hub-{hub_id}-ingest-{index}"


def worker_link_config(settings: Settings, index: int, *, retiring: bool = False) -> MqttLinkConfig:
    """Return the link settings of worker `index`; a retiring worker drops its subscription."""
    if not 0 <= index < MAX_INGEST_WORKERS:
        raise ValueError(f"an ingest worker's index runs from 0 to {MAX_INGEST_WORKERS - 1}, not {index}")
    shared = shared_telemetry_subscriptions(settings.mqtt_root, group=ingest_group(settings))
    return MqttLinkConfig(
        url=settings.mqtt_url or "",
        client_id=worker_client_id(settings.hub_id, index),
        state_topic=None,
        subscriptions=() if retiring else shared,
        unsubscriptions=tuple(topic_filter for topic_filter, _ in shared) if retiring else (),
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        protocol="5",
    )


def run_worker(
    settings: Settings, index: int, stop: threading.Event, *, bridge_class: type[MqttBridge] = MqttBridge
) -> Counter[str]:
    """Receive and store telemetry as worker `index` until `stop` is set; return what it did.

    Raises `MqttLinkStoppedError` when the broker refuses the worker for good (bad credentials).
    `bridge_class` lets a benchmark note when each batch commits.
    """
    link = MqttLink(worker_link_config(settings, index)).start()
    bridge = bridge_class(
        link, root=settings.mqtt_root, publish=False, max_skew=timedelta(seconds=settings.clock_skew_seconds)
    )
    sqlite_file = _sqlite_file(settings.sqlalchemy_url)
    if sqlite_file is not None:
        bridge.write_turn = WriteTurn(sqlite_file.with_name(sqlite_file.name + ".ingest-lock"))
    try:
        bridge.start()
        log.info("ingest worker %d started as %s", index, link.config.client_id)
        while not stop.wait(1.0):
            if link.stopped_reason is not None:
                raise MqttLinkStoppedError(link.stopped_reason)
    finally:
        # The writer first, so whatever it holds is committed and acknowledged before the link
        # goes; what it never took stays unacknowledged and the broker sends it again.
        bridge.stop()
        link.stop()
    return bridge.counts


class WriteTurn:
    """An exclusive lock on a file that ingest workers take around each write to SQLite.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to
    100 ms), so with several workers one would keep the database while the others sleep. The
    kernel hands a released `flock` to a waiting process at once. Each use opens its own file
    description, so threads of one process take turns as well.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def __call__(self) -> Iterator[None]:
        """Hold the turn for the duration of the block."""
        with self.path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_file(url: str) -> Path | None:
    """Return the database file of a SQLite URL, None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def settle_sessions(
    settings: Settings, workers: int, *, idle: float = 1.0, drain_timeout: float = 60.0
) -> int:
    """Make the broker hold exactly the sessions of workers 0..workers-1; return reports stored.

    The sessions of the wanted workers are subscribed before any worker process runs, so the
    broker queues their share from now on even if a process is slow to start. Every other
    worker session up to MAX_INGEST_WORKERS is connected to, emptied into the database and
    ended, so lowering the number of workers never strands the reports queued for one.
    """
    if not 0 <= workers <= MAX_INGEST_WORKERS:
        raise ValueError(f"the number of ingest workers runs from 0 to {MAX_INGEST_WORKERS}, not {workers}")
    stored = 0
    for index in range(MAX_INGEST_WORKERS):
        if index < workers:
            _subscribe(settings, index)
        else:
            stored += _retire(settings, index, idle, drain_timeout)
    return stored


def _subscribe(settings: Settings, index: int) -> None:
    link = MqttLink(worker_link_config(settings, index)).start()
    try:
        link.wait_connected(30)
    finally:
        # Whatever reached this short-lived link is left unacknowledged: the broker sends it
        # again to the worker process, which has the same session.
        link.stop()


def _retire(settings: Settings, index: int, idle: float, drain_timeout: float) -> int:
    link = MqttLink(worker_link_config(settings, index, retiring=True)).start()
    drained = False
    try:
        link.wait_connected(30)
        if not link.session_present:
            drained = True  # nothing was there; the session this connect made goes again below
            return 0
        bridge = MqttBridge(
            link,
            root=settings.mqtt_root,
            publish=False,
            max_skew=timedelta(seconds=settings.clock_skew_seconds),
        )
        bridge.start()
        try:
            drained = _wait_idle(link, bridge, idle, drain_timeout)
        finally:
            bridge.stop()
        stored = sum(bridge.counts.values())
        if drained:
            log.info(
                "retired ingest worker session %s; stored %d reports it held", link.config.client_id, stored
            )
        else:
            log.warning(
                "ingest worker session %s still delivering after %.0f s; kept for the next start",
                link.config.client_id,
                drain_timeout,
            )
        return stored
    finally:
        # Ending the session discards what the broker still queues for it, so only when drained.
        link.stop(end_session=drained)


def _wait_idle(link: MqttLink, bridge: MqttBridge, idle: float, timeout: float) -> bool:
    """Wait until nothing arrived or was written for `idle` seconds; False when time ran out."""
    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        handled = sum(bridge.counts.values())
        if handled != seen or not link.queue.empty():
            seen, quiet_since = handled, time.monotonic()
        elif time.monotonic() - quiet_since >= idle:
            return True
        time.sleep(0.05)
    return False
