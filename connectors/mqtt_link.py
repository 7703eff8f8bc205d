"""The hub's MQTT link: one persistent paho-mqtt session that moves bytes, never decodes them.

Paho's network thread only wraps each message in an `InboundMessage` and puts it on a bounded
queue; a writer elsewhere drains the queue in batches, commits, then calls `MqttLink.ack`. With
`manual_ack` the broker keeps every unacknowledged QoS 1 message of the persistent session and
sends it again after a crash (MQTT 3.1.1 §4.4), so nothing is lost between the socket and the
database. Decoding happens in the consumer, through `contracts.mqtt`.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from connectors.mqtt_common import PERMANENT_REFUSALS, disable_nagle, next_session
from contracts.mqtt import ConnectionState, encode

logger = logging.getLogger(__name__)
paho_logger = logging.getLogger(f"{__name__}.paho")

MqttProtocol = Literal["3.1.1", "5"]

# How often a network thread held up by a full queue looks whether the link is stopping.
_PUT_POLL = 0.2
# A writer that stays behind would otherwise log once a message.
_FULL_WARNING_EVERY = 10.0


class MqttLinkError(RuntimeError):
    """Something the MQTT link could not do."""


class MqttLinkStoppedError(MqttLinkError):
    """The link gave up (bad credentials, say) or was stopped; `str()` says why."""


class MqttNotConnectedError(MqttLinkError):
    """The link has no connection to the broker right now."""


class MqttPublishError(MqttLinkError):
    """A publish was refused or not acknowledged in time."""


class MqttBackpressureError(MqttPublishError):
    """Paho's outgoing queue is full: slow down and try again later."""


@dataclass(frozen=True)
class MqttLinkConfig:
    """Everything the link needs; built once at start-up, read-only afterwards."""

    url: str
    client_id: str
    # Where the link publishes its retained ConnectionState: online on every connect, offline
    # on a clean stop, and offline as the last will when the connection dies. None for a link
    # that speaks for no one (an ingest worker): no will, no birth.
    state_topic: str | None
    subscriptions: tuple[tuple[str, int], ...] = ()
    # Filters the session may still hold from an earlier configuration and must drop: a
    # persistent session keeps its subscriptions across connects, so leaving one out of
    # `subscriptions` is not enough.
    unsubscriptions: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: MqttProtocol = "3.1.1"
    keepalive: int = 30
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 30.0
    connect_timeout: float = 5.0
    queue_max: int = 10_000
    # MQTT 5 only: how long the broker keeps the session (and queues for it) while the hub is
    # away; under 3.1.1 a session without clean_session lives until the broker drops it.
    session_expiry: int = 7 * 24 * 3600
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        """Refuse settings that could only fail later, inside the network thread."""
        object.__setattr__(self, "subscriptions", tuple((str(f), int(q)) for f, q in self.subscriptions))
        object.__setattr__(self, "unsubscriptions", tuple(str(f) for f in self.unsubscriptions))
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"MQTT url must look like mqtt://host:port or mqtts://host:port, not {self.url!r}"
            )
        if parts.username or parts.password:
            raise ValueError("give MQTT credentials as username and password, not inside the url")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"MQTT url must not have a path, query or fragment: {self.url!r}")
        _ = self.port  # urlsplit checks the port only when it is read
        if not self.client_id:
            raise ValueError("client_id must not be empty: a persistent session is keyed on it")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if self.protocol not in ("3.1.1", "5"):
            raise ValueError(f"protocol must be '3.1.1' or '5', not {self.protocol!r}")
        for topic_filter, qos in self.subscriptions:
            if qos not in (0, 1, 2) or not topic_filter:
                raise ValueError(f"bad subscription {(topic_filter, qos)!r}")
        if self.queue_max < 1:
            raise ValueError("queue_max must be at least 1")
        if not 0 < self.reconnect_min_delay <= self.reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")

    @property
    def host(self) -> str:
        """Return the broker's host name."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Return the broker's port, 1883 (or 8883 for mqtts) when the url has none."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """Return whether the link uses TLS."""
        return urlsplit(self.url).scheme == "mqtts"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message as it came off the wire, with what `MqttLink.ack` needs to acknowledge it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    # Set by the sender when the broker sends the message again (MQTT 3.1.1 §3.3.1.1).
    dup: bool
    # Which connection of this link delivered it: packet ids are per connection, so an ack
    # may only go back on the connection the message came in on.
    connection: int
    received_at: datetime
    received_monotonic: float


class MqttLink:
    """The hub's connection to the broker: subscribe, queue what arrives, publish, acknowledge."""

    def __init__(self, config: MqttLinkConfig) -> None:
        """Prepare the client; nothing touches the network until `start`."""
        self.config = config
        self.stopped_reason: str | None = None
        self.last_error: str | None = None
        self.refused_subscriptions: tuple[str, ...] = ()
        # What the broker said in the last CONNACK: whether it still held this client's session.
        self.session_present: bool | None = None
        self._queue: queue.Queue[InboundMessage] = queue.Queue(maxsize=config.queue_max)
        # Guards the connection number against `ack` running while a callback changes it.
        self._lock = threading.Lock()
        self._connection = 0
        self._session = 0
        self._subscribe_mid: int | None = None
        self._connected = threading.Event()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._started = False
        self._publish_refusals: dict[int, str] = {}
        self._last_full_warning = -_FULL_WARNING_EVERY
        self._client = self._make_client()

    def __repr__(self) -> str:
        """Show the client id, the broker and whether the link is connected."""
        if self.connected:
            state = "connected"
        else:
            state = f"stopped: {self.stopped_reason}" if self.stopped_reason else "down"
        return f"<MqttLink {self.config.client_id} {self.config.host}:{self.config.port} {state}>"

    @property
    def connected(self) -> bool:
        """Return whether the link holds a connection the broker has accepted."""
        return self._connected.is_set()

    @property
    def session(self) -> int:
        """Return the session counter of the current (or last) connection."""
        return self._session

    @property
    def queue(self) -> queue.Queue[InboundMessage]:
        """Return the bounded queue that received messages wait on."""
        return self._queue

    def _make_client(self) -> mqtt.Client:
        config = self.config
        v5 = config.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            # A persistent session (MQTT 3.1.1 §3.1.2.4): the broker keeps subscriptions and
            # queues QoS 1 messages while the hub is away. MQTT 5 sets this per connect instead.
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set(
                ca_certs=str(config.ca_file) if config.ca_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.connect_timeout = config.connect_timeout
        # Sub-second delays keep tests quick.
        client.reconnect_delay_set(config.reconnect_min_delay, config.reconnect_max_delay)  # type: ignore[arg-type]  # paho hints int, sleeps on any number
        # A bug in a callback must be logged, not end the network thread and with it the link.
        client.suppress_exceptions = True
        client.on_log = self._on_log
        client.on_pre_connect = self._on_pre_connect
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # Life cycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Connect in the background; paho retries until the broker answers or refuses for good."""
        if self._started:
            raise MqttLinkError("the link was already started; make a new one")
        self._started = True
        config = self.config
        if config.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = config.session_expiry
            # The broker sends at most this many unacknowledged messages (MQTT 5 §3.1.2.11.3), so
            # under MQTT 5 flow control mostly keeps the queue bounded without stalling the network
            # thread; QoS 0 is not flow-controlled, hence the blocking put stays as a safety net.
            properties.ReceiveMaximum = min(config.queue_max, 65_535)
            # clean_start=False on every connect, the first included: paho's default would start
            # the first session clean and drop what the broker queued while the hub was down.
            self._client.connect_async(
                config.host, config.port, config.keepalive, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(config.host, config.port, config.keepalive)
        self._client.loop_start()
        logger.info("MQTT link %s connecting to %s:%s", config.client_id, config.host, config.port)
        return self

    def wait_connected(self, timeout: float) -> None:
        """Wait until connected and subscribed; raise if the link gave up or time runs out."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self.stopped_reason is not None:
                raise MqttLinkStoppedError(self.stopped_reason)
            if time.monotonic() >= deadline:
                detail = f": {self.last_error}" if self.last_error else ""
                raise TimeoutError(
                    f"MQTT link {self.config.client_id} not connected to "
                    f"{self.config.host}:{self.config.port} within {timeout} s{detail}"
                )

    def stop(self, timeout: float = 5.0, *, end_session: bool = False) -> None:
        """Publish the retained offline state, disconnect cleanly and end the network thread.

        With `end_session` (MQTT 5 only) the broker drops the session and anything it still
        queues for it, instead of keeping it for the link's return.
        """
        if self._stopping.is_set():
            return
        if end_session and self.config.protocol != "5":
            raise MqttLinkError("only an MQTT 5 link can end its session when it disconnects")
        self._stopping.set()
        if self.stopped_reason is None:
            self.stopped_reason = "stopped"
        if self._connected.is_set() and self.config.state_topic is not None:
            offline = ConnectionState(online=False, session=self._session, at=datetime.now(UTC))
            info = self._client.publish(self.config.state_topic, encode(offline), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
                if not info.is_published():
                    raise RuntimeError(f"no acknowledgment within {timeout} s")
            except (RuntimeError, ValueError) as error:
                # The will is discarded by the clean disconnect below, so say so loudly.
                logger.warning("MQTT link %s: offline state not published: %s", self.config.client_id, error)
        # A clean DISCONNECT makes the broker discard the will (MQTT 3.1.1 §3.14.4): the offline
        # state above, with its time, is what stays retained.
        properties = None
        if end_session:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        self._client.disconnect(properties=properties)
        self._client.loop_stop()
        self._connected.clear()
        self._ready.clear()
        logger.info("MQTT link %s stopped", self.config.client_id)

    def __enter__(self) -> Self:
        """Start the link."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the link."""
        self.stop()

    # Receiving ---------------------------------------------------------------------------------

    def next_batch(self, max_items: int, timeout: float) -> list[InboundMessage]:
        """Wait up to `timeout` for a message, then take whatever else is queued, up to `max_items`."""
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < max_items:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def ack(self, messages: Iterable[InboundMessage]) -> int:
        """Acknowledge messages the consumer has committed; return how many acks were sent.

        A message from an earlier connection is not acknowledged: its packet id may belong to
        another message by now, and the broker sends it again anyway (MQTT 3.1.1 §4.4), where
        the consumer's dedupe by message id absorbs it.
        """
        sent = stale = 0
        with self._lock:
            for message in messages:
                if message.qos == 0:
                    continue
                if message.connection != self._connection or not self._connected.is_set():
                    stale += 1
                    continue
                self._client.ack(message.mid, message.qos)
                sent += 1
        if stale:
            logger.debug(
                "MQTT link %s: %d acks skipped, their connection is gone", self.config.client_id, stale
            )
        return sent

    # Publishing --------------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1) or the write (QoS 0); raise on failure."""
        deadline = time.monotonic() + timeout
        if self.stopped_reason is not None:
            raise MqttLinkStoppedError(f"MQTT link {self.config.client_id} is stopped: {self.stopped_reason}")
        if not self._connected.wait(timeout):
            raise MqttNotConnectedError(
                f"MQTT link {self.config.client_id} not connected within {timeout} s; nothing was published"
            )
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            # Paho would drop the message silently: 65,535 packet ids are all awaiting acks.
            raise MqttBackpressureError(f"too many messages awaiting acknowledgment; {topic} not published")
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            raise MqttNotConnectedError(
                f"connection lost while publishing to {topic}; paho keeps the QoS {qos} message in "
                "memory and sends it on reconnect, so a retry may duplicate it"
            )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MqttPublishError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except RuntimeError as error:
            raise MqttPublishError(f"publish to {topic} failed: {error}") from error
        if not info.is_published():
            raise MqttPublishError(
                f"no acknowledgment for {topic} within {timeout} s; paho keeps the message and may "
                "still deliver it"
            )
        refusal = self._publish_refusals.pop(info.mid, None)
        if refusal is not None:
            # Only MQTT 5 says so; under 3.1.1 the broker drops a denied publish silently.
            raise MqttPublishError(f"broker refused the publish to {topic}: {refusal}")

    # Paho callbacks (network thread) -----------------------------------------------------------

    def _on_log(self, _client: mqtt.Client, _userdata: Any, level: int, text: str) -> None:
        # Paho's loop logs "Client is not connected" as an error after every clean DISCONNECT;
        # while stopping that is expected, not a fault.
        if level == mqtt.MQTT_LOG_ERR and not self._stopping.is_set():
            paho_logger.error("%s: %s", self.config.client_id, text)
        elif level == mqtt.MQTT_LOG_WARNING:
            paho_logger.warning("%s: %s", self.config.client_id, text)
        else:
            paho_logger.debug("%s: %s", self.config.client_id, text)

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        # A new session number for every connection, put in the will now because the broker
        # takes the will with CONNECT. Milliseconds since the epoch keep it rising across restarts
        # of the hub, so a late will of the previous process cannot undo a newer birth.
        self._session = next_session(self._session)
        if self.config.state_topic is not None:
            will = ConnectionState(online=False, session=self._session)
            client.will_set(self.config.state_topic, encode(will), qos=1, retain=True)

    def _on_socket_open(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        disable_nagle(sock, f"MQTT link {self.config.client_id}", logger)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._on_refused(client, reason_code)
            return
        with self._lock:
            self._connection += 1
            self._connected.set()
        self.last_error = None
        self.session_present = bool(flags.session_present)
        logger.info(
            "MQTT link %s connected (session present: %s, session %d)",
            self.config.client_id,
            flags.session_present,
            self._session,
        )
        if not flags.session_present and self._connection > 1:
            # The broker restarted without its persistence file, or the session expired: what
            # it queued for the hub while the link was down is gone.
            logger.warning("MQTT link %s: the broker lost this client's session", self.config.client_id)
        # Paho never subscribes again by itself, and a broker that lost its state comes back
        # without the session: subscribe on every connect. A repeated SUBSCRIBE replaces the
        # subscription, it does not double it (MQTT 3.1.1 §3.8.4).
        if self.config.unsubscriptions:
            client.unsubscribe(list(self.config.unsubscriptions))
        if self.config.subscriptions:
            _, self._subscribe_mid = client.subscribe(self._subscription_list())
        else:
            self._ready.set()
        if self.config.state_topic is not None:
            birth = ConnectionState(online=True, session=self._session, at=datetime.now(UTC))
            client.publish(self.config.state_topic, encode(birth), qos=1, retain=True)

    def _subscription_list(self) -> list[tuple[str, Any]]:
        if self.config.protocol != "5":
            return list(self.config.subscriptions)
        # Retained messages only for a subscription the session does not hold yet (MQTT 5
        # §3.8.3.1), so a reconnect does not replay every retained status and state.
        return [
            (topic_filter, SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))
            for topic_filter, qos in self.config.subscriptions
        ]

    def _on_refused(self, client: mqtt.Client, reason_code: ReasonCode) -> None:
        reason = reason_code.getName()
        self.last_error = f"broker refused the connection: {reason}"
        if reason not in PERMANENT_REFUSALS:
            logger.warning("MQTT link %s: %s; retrying", self.config.client_id, self.last_error)
            return
        self.stopped_reason = (
            f"broker at {self.config.host}:{self.config.port} refused client {self.config.client_id} "
            f"as user {self.config.username!r}: {reason}; not retrying"
        )
        logger.error("MQTT link %s", self.stopped_reason)
        # Disconnecting from inside the callback ends paho's loop instead of its retry.
        client.disconnect()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.last_error = f"cannot reach the broker at {self.config.host}:{self.config.port}"
        logger.debug("MQTT link %s: %s; retrying", self.config.client_id, self.last_error)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._lock:
            was_connected = self._connected.is_set()
            self._connected.clear()
            self._ready.clear()
        if was_connected and not self._stopping.is_set():
            self.last_error = f"connection lost: {reason_code.getName()}"
            logger.warning("MQTT link %s: %s; reconnecting", self.config.client_id, self.last_error)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        filters = [topic_filter for topic_filter, _ in self.config.subscriptions]
        refused = tuple(f for f, code in zip(filters, reason_codes, strict=False) if code.is_failure)
        self.refused_subscriptions = refused
        if refused:
            # An ACL that denies a filter answers 0x80 in the SUBACK (MQTT 3.1.1 §3.9.3).
            logger.error("MQTT link %s: broker refused subscriptions %s", self.config.client_id, refused)
        self._ready.set()

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        # Packet ids are reused, so each PUBACK overwrites what an earlier one said.
        if reason_code.is_failure:
            self._publish_refusals[mid] = reason_code.getName()
        else:
            self._publish_refusals.pop(mid, None)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        inbound = InboundMessage(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
            mid=message.mid,
            dup=bool(message.dup),
            connection=self._connection,
            received_at=datetime.now(UTC),
            received_monotonic=time.monotonic(),
        )
        try:
            self._queue.put_nowait(inbound)
            return
        except queue.Full:
            self._warn_queue_full()
        # Backpressure, never loss: while this thread waits it reads nothing more, the broker's
        # in-flight window fills and it queues the rest for the session.
        while not self._stopping.is_set():
            try:
                self._queue.put(inbound, timeout=_PUT_POLL)
                return
            except queue.Full:
                continue
        # Stopping: the message was never acknowledged, so the broker sends it again next time.
        logger.debug("MQTT link %s: %s left unqueued at stop", self.config.client_id, inbound.topic)

    def _warn_queue_full(self) -> None:
        now = time.monotonic()
        if self._stopping.is_set() or now - self._last_full_warning < _FULL_WARNING_EVERY:
            return
        self._last_full_warning = now
        logger.warning(
            "MQTT link %s: queue full (%d); holding the network thread until the writer catches up",
            self.config.client_id,
            self.config.queue_max,
        )
