"""Carry MQTT traffic between the link and the hub's database.

The link's network thread only queues what arrives. Here a writer thread drains that queue in
batches, one transaction per batch, and acknowledges the messages to the broker only after the
commit, so a crash before the commit gets them redelivered instead of lost. A publisher thread
sends the outbox (commands, joint alerts) and closes commands whose time ran out.

These are long-running workers rather than Prefect flows: a flow per message would cost more
than the message (see FIELD-NOTES), and the broker's own queue is what makes them durable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta

from sqlalchemy.exc import InterfaceError, OperationalError

from connectors.mqtt_link import InboundMessage, MqttLink, MqttLinkError
from contracts.errors import ContractError
from contracts.mqtt import decode_message
from flows.context import hub_session
from hub.fleet import commands, ingest
from hub.kernel import dead_letters
from hub.kernel.types import utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 500
IDLE_WAIT = 0.5  # seconds the writer waits for a first message before looking at its stop flag
RETRY_WAIT = 1.0  # after a failed commit, wait this long and try the same batch again


# Positions one thinning transaction deletes at most.
THIN_BATCH = 5000


class MqttBridge:
    """Writer and publisher threads between an `MqttLink` and the database."""

    def __init__(
        self,
        link: MqttLink,
        *,
        root: str,
        publish_poll: float = 1.0,
        position_retention: timedelta = timedelta(days=30),
        position_thin_after: timedelta = timedelta(days=3),
        prune_every: float = 3600.0,
        publish: bool = True,
        max_skew: timedelta = ingest.DEFAULT_MAX_SKEW,
    ) -> None:
        """Set `publish=False` for an ingest worker: the outbox and pruning belong to the hub alone."""
        self.link = link
        self.publishes = publish
        self.root = root
        self.max_skew = max_skew
        self.publish_poll = publish_poll
        self.position_retention = position_retention
        self.position_thin_after = position_thin_after
        self.prune_every = prune_every
        self._next_prune = 0.0
        self.counts: Counter[str] = Counter()
        # When the writer last acknowledged a batch (monotonic clock): lets a draining caller see
        # that nothing more is arriving.
        self.last_ack = time.monotonic()
        # Held around each batch's transaction; ingest workers on SQLite take turns through it.
        self.write_turn: Callable[[], AbstractContextManager[object]] = nullcontext
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the writer and, unless this is an ingest worker, the publisher."""
        loops = [(self._write_loop, "hub-mqtt-writer")]
        if self.publishes:
            loops.append((self._publish_loop, "hub-mqtt-publisher"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Publish the outbox now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop both threads; unacknowledged messages stay with the broker."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)

    # Writing -------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            # Waits for the first message only, then takes whatever else is queued: under load the
            # batches grow by themselves, when idle each message is written at once.
            batch = self.link.next_batch(MAX_BATCH, IDLE_WAIT)
            if batch:
                self._write_until_committed(batch)

    def _write_until_committed(self, batch: list[InboundMessage]) -> None:
        while not self._stop.is_set():
            try:
                self.write(batch)
            except (OperationalError, InterfaceError):
                # The database is away or locked; nothing is acknowledged, so nothing is lost.
                log.exception("could not store a batch of %d MQTT messages; retrying", len(batch))
                self._stop.wait(RETRY_WAIT)
                continue
            except Exception:
                # Something in the batch the database refuses: find it, so one bad message cannot
                # hold up every message behind it.
                log.exception("a batch of %d MQTT messages failed; writing them one by one", len(batch))
                if not self._write_one_by_one(batch):
                    continue
            self.link.ack(batch)
            self.last_ack = time.monotonic()
            return

    def _write_one_by_one(self, batch: list[InboundMessage]) -> bool:
        """Write each message alone, dead-lettering the ones refused; False if the database is away."""
        for message in batch:
            try:
                self.write([message])
            except (OperationalError, InterfaceError):
                self._stop.wait(RETRY_WAIT)
                return False
            except Exception as exc:
                with hub_session() as session:
                    dead_letters.record(
                        session, "mqtt", message.topic, f"refused by the database: {exc}", message.payload
                    )
        return True

    def write(self, batch: list[InboundMessage]) -> Counter[str]:
        """Decode and store one batch in one transaction; bad payloads become dead letters."""
        decoded: list[ingest.Inbound] = []
        rejected: list[tuple[InboundMessage, str]] = []
        for message in batch:
            try:
                address, payload = decode_message(message.topic, message.payload, root=self.root)
            except ContractError as exc:
                rejected.append((message, str(exc)))
                continue
            decoded.append(ingest.Inbound(address, payload, message.payload))
        with self.write_turn(), hub_session() as session:
            counts = ingest.apply_batch(session, decoded, root=self.root, max_skew=self.max_skew)
            for message, reason in rejected:
                dead_letters.record(session, "mqtt", message.topic, reason, message.payload)
        counts["dead_letter"] += len(rejected)
        self.counts.update(counts)
        if counts.get("state"):
            # A vehicle that came back online may have commands queued again for it.
            self._wake.set()
        return counts

    # Publishing ----------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.publish_poll)
            self._wake.clear()
            try:
                self.publish_outbox()
                self._prune_when_due()
            except Exception:
                log.exception("publishing the MQTT outbox failed; will try again")

    def _prune_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + self.prune_every
        thinned = 0
        while not self._stop.is_set():
            # One short transaction per batch, so the telemetry writer never waits long.
            with hub_session() as session:
                batch = ingest.thin_positions(session, utcnow(), self.position_thin_after, THIN_BATCH)
            thinned += batch
            if batch < THIN_BATCH:
                break
        with hub_session() as session:
            removed = ingest.prune_positions(session, self.position_retention)
        if thinned or removed:
            log.info(
                "thinned %d positions older than %s, removed %d older than %s",
                thinned,
                self.position_thin_after,
                removed,
                self.position_retention,
            )

    def publish_outbox(self) -> int:
        """Close expired commands and publish what waits in the outbox; return how many went out."""
        with hub_session() as session:
            commands.expire(session)
            pending = [(m.id, m.topic, m.payload, m.qos) for m in commands.unpublished(session)]
        sent = 0
        for message_id, topic, payload, qos in pending:
            try:
                self.link.publish(topic, payload, qos=qos, timeout=5.0)
            except MqttLinkError as exc:
                with hub_session() as session:
                    commands.mark_publish_failed(session, message_id, str(exc))
                log.warning("outbox message %s to %s not published: %s", message_id, topic, exc)
                break  # the link is down or saturated: keep the order, try again later
            with hub_session() as session:
                commands.mark_published(session, message_id)
            sent += 1
        return sent
