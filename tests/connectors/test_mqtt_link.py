"""The hub's MQTT link against a real Mosquitto: delivery, redelivery, restarts, auth, will."""

from __future__ import annotations

import queue
import socket
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.mqtt_link import (
    InboundMessage,
    MqttLinkConfig,
    MqttLinkStoppedError,
    MqttNotConnectedError,
    MqttPublishError,
)
from contracts.mqtt import (
    ConnectionState,
    Telemetry,
    TopicKind,
    command_topic,
    decode_connection_state,
    decode_message,
    encode,
    supersedes,
    telemetry_topic,
)
from hub.runtime import ManagedMosquitto
from tests.connectors.conftest import HUB_STATE, TIMEOUT, Links, Peer, take, wait_until

MakeMosquitto = Callable[..., ManagedMosquitto]
MakePeer = Callable[..., Peer]
TOPIC = telemetry_topic("hh", "xuzhou", "xz-cmd-01")
PROTOCOLS = pytest.mark.parametrize("protocol", ["3.1.1", "5"])


def _telemetry(seq: int) -> bytes:
    return encode(
        Telemetry(
            vehicle="xz-cmd-01",
            lat=34.2,
            lon=117.2,
            speed_kmh=40.0,
            heading=90.0,
            at=datetime.now(UTC),
            seq=seq,
        )
    )


def _seqs(messages: list[InboundMessage]) -> list[int]:
    """Decode telemetry messages and return their sequence numbers, in arrival order."""
    seqs = []
    for message in messages:
        telemetry = decode_message(message.topic, message.payload)[1]
        assert isinstance(telemetry, Telemetry)
        seqs.append(telemetry.seq)
    return seqs


@PROTOCOLS
def test_qos1_messages_land_in_the_queue_and_decode(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer, protocol: str
) -> None:
    link = links.connected(mosquitto_broker, protocol=protocol)
    vehicle = peers(mosquitto_broker, "xz-cmd-01")

    vehicle.publish(TOPIC, _telemetry(1))
    [message] = take(link, 1)

    assert (message.topic, message.qos, message.retain, message.dup) == (TOPIC, 1, False, False)
    assert message.connection == 1
    assert message.received_at.tzinfo is not None
    address, telemetry = decode_message(message.topic, message.payload)
    assert address.kind is TopicKind.TELEMETRY
    assert isinstance(telemetry, Telemetry)
    assert telemetry.seq == 1
    assert link.ack([message]) == 1


def test_socket_has_tcp_nodelay(mosquitto_broker: ManagedMosquitto, links: Links) -> None:
    link = links.connected(mosquitto_broker)
    sock = link._client.socket()
    assert sock is not None
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@PROTOCOLS
@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_unacked_messages_are_redelivered_after_a_crash(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer, protocol: str
) -> None:
    link = links.connected(mosquitto_broker, protocol=protocol)
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    for seq in (1, 2, 3):
        vehicle.publish(TOPIC, _telemetry(seq))
    first, *unacked = take(link, 3)
    assert link.ack([first]) == 1
    # The broker handles a connection's packets in order: once it acknowledges this publish,
    # it has also taken the PUBACK sent before it.
    link.publish(command_topic("hh", "xuzhou", "xz-cmd-01"), b"{}")
    links.crash(link)

    again = links.connected(mosquitto_broker, protocol=protocol)
    redelivered = take(again, 2)

    assert _seqs(redelivered) == _seqs(unacked) == [2, 3]
    assert all(m.dup for m in redelivered)
    assert again.ack(redelivered) == 2
    vehicle.publish(TOPIC, _telemetry(4))
    assert _seqs(take(again, 1)) == [4]


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_ack_skips_messages_of_an_earlier_connection(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer
) -> None:
    link = links.connected(mosquitto_broker)
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    vehicle.publish(TOPIC, _telemetry(1))
    [old] = take(link, 1)
    mosquitto_broker.restart()
    wait_until(lambda: link.connected, what="reconnect")
    [redelivered] = take(link, 1)

    # Packet ids are per connection: the old message's id may name another message by now.
    assert link.ack([old]) == 0
    assert (redelivered.connection, redelivered.mid) == (2, old.mid)
    assert link.ack([redelivered]) == 1


@PROTOCOLS
def test_messages_sent_while_the_hub_is_away_arrive_when_it_returns(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer, protocol: str
) -> None:
    links.connected(mosquitto_broker, protocol=protocol).stop()
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    for seq in range(1, 6):
        vehicle.publish(TOPIC, _telemetry(seq))

    back = links.connected(mosquitto_broker, protocol=protocol)

    assert _seqs(take(back, 5)) == [1, 2, 3, 4, 5]


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_broker_killed_and_restarted_keeps_the_queued_session(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer
) -> None:
    links.crash(links.connected(mosquitto_broker))
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    vehicle.publish(TOPIC, _telemetry(1))
    vehicle.publish(TOPIC, _telemetry(2))
    vehicle.close()
    mosquitto_broker.save()
    mosquitto_broker.kill()
    mosquitto_broker.start()

    link = links.connected(mosquitto_broker)

    assert _seqs(take(link, 2)) == [1, 2]


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_link_reconnects_and_subscribes_again_after_the_broker_lost_everything(
    make_mosquitto: MakeMosquitto, links: Links, peers: MakePeer, caplog: pytest.LogCaptureFixture
) -> None:
    # Without persistence the restarted broker has no session and no subscription: only the
    # link's own re-subscribe in on_connect brings the messages back.
    broker = make_mosquitto(persistence=False)
    link = links.connected(broker)
    broker.kill()
    wait_until(lambda: not link.connected, what="link noticing the broker is gone")
    broker.start()
    link.wait_connected(TIMEOUT)

    vehicle = peers(broker, "xz-cmd-01")
    vehicle.publish(TOPIC, _telemetry(7))

    assert _seqs(take(link, 1)) == [7]
    assert "the broker lost this client's session" in caplog.text


@PROTOCOLS
def test_backpressure_holds_the_network_thread_and_loses_nothing(
    mosquitto_broker: ManagedMosquitto,
    links: Links,
    peers: MakePeer,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = links.connected(mosquitto_broker, queue_max=3, protocol=protocol)
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    for seq in range(40):
        vehicle.publish(TOPIC, _telemetry(seq))

    got = []
    while len(got) < 40:
        batch = take(link, min(3, 40 - len(got)))
        assert link.queue.qsize() <= 3
        got += batch
        link.ack(batch)

    assert _seqs(got) == list(range(40))
    # Under 3.1.1 the broker sends up to its max_inflight_messages (20 by default) unacked, so a
    # queue of 3 overflows and the network thread waits; MQTT 5's Receive Maximum of 3 mostly
    # spares it, though Mosquitto 2.0.11 was seen to send one more while acks were arriving.
    if protocol == "3.1.1":
        assert any("queue full (3)" in record.getMessage() for record in caplog.records)


# Connection state: birth, will, clean stop -----------------------------------------------------


def _state(peer: Peer) -> ConnectionState:
    message = peer.receive()
    assert message.topic == HUB_STATE
    return decode_connection_state(message.payload)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_birth_on_connect_will_on_crash_and_a_newer_session_on_return(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer
) -> None:
    watcher = peers(mosquitto_broker, "watcher")
    watcher.subscribe(HUB_STATE)
    link = links.connected(mosquitto_broker)
    birth = _state(watcher)
    assert birth.online and birth.session == link.session and birth.at is not None

    links.crash(link)
    will = _state(watcher)
    assert (will.online, will.session, will.at) == (False, birth.session, None)

    again = links.connected(mosquitto_broker)
    rebirth = _state(watcher)
    assert rebirth.online
    assert rebirth.session == again.session > birth.session
    # A will of the first connection delivered late must not win over the second's birth.
    assert not supersedes(will, rebirth)

    late_joiner = peers(mosquitto_broker, "late-joiner")
    late_joiner.subscribe(HUB_STATE)
    assert _state(late_joiner) == rebirth


def test_clean_stop_leaves_a_retained_offline_state_and_no_will(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer
) -> None:
    watcher = peers(mosquitto_broker, "watcher")
    watcher.subscribe(HUB_STATE)
    link = links.connected(mosquitto_broker)
    birth = _state(watcher)

    link.stop()
    offline = _state(watcher)

    assert (offline.online, offline.session) == (False, birth.session)
    assert offline.at is not None
    late_joiner = peers(mosquitto_broker, "late-joiner")
    late_joiner.subscribe(HUB_STATE)
    assert _state(late_joiner) == offline
    # A clean DISCONNECT discards the will: nothing follows the offline state.
    with pytest.raises(queue.Empty):
        watcher.receive(timeout=0.3)


# Publishing ------------------------------------------------------------------------------------


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_publish_waits_for_the_broker_and_fails_clearly_without_it(
    mosquitto_broker: ManagedMosquitto, links: Links, peers: MakePeer
) -> None:
    vehicle = peers(mosquitto_broker, "xz-cmd-01")
    vehicle.subscribe(command_topic("hh", "xuzhou", "xz-cmd-01"))
    link = links.connected(mosquitto_broker)

    link.publish(command_topic("hh", "xuzhou", "xz-cmd-01"), b'{"x":1}')
    assert vehicle.receive().payload == b'{"x":1}'

    mosquitto_broker.kill()
    wait_until(lambda: not link.connected, what="link noticing the broker is gone")
    with pytest.raises(MqttNotConnectedError, match=r"not connected within 0\.2 s; nothing was published"):
        link.publish(command_topic("hh", "xuzhou", "xz-cmd-01"), b"{}", timeout=0.2)


# Credentials -----------------------------------------------------------------------------------


@pytest.fixture
def secured_broker(make_mosquitto: MakeMosquitto, tmp_path: Path) -> ManagedMosquitto:
    """Return a broker that knows one user, hub/right-password, and refuses anonymous clients."""
    passwd = Path("/usr/bin/mosquitto_passwd")
    if not passwd.is_file():
        pytest.skip("mosquitto_passwd not installed (package mosquitto)")
    password_file = tmp_path / "passwd"
    subprocess.run([passwd, "-c", "-b", password_file, "hub", "right-password"], check=True, timeout=10)
    acl_file = tmp_path / "acl"
    # The hub may read vehicles' topics and write their commands and its own state; nothing else.
    acl_file.write_text(
        "user hub\ntopic read hh/v1/+/vehicles/+/telemetry\ntopic write hh/v1/+/vehicles/+/cmd\n"
        f"topic readwrite {HUB_STATE}\n"
    )
    return make_mosquitto(allow_anonymous=False, password_file=password_file, acl_file=acl_file)


@PROTOCOLS
@pytest.mark.parametrize(
    "credentials",
    [{"username": "hub", "password": "wrong"}, {"username": "nobody", "password": "x"}, {}],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
def test_bad_credentials_stop_the_link_and_say_why(
    secured_broker: ManagedMosquitto, links: Links, protocol: str, credentials: dict[str, str]
) -> None:
    link = links.make(secured_broker, protocol=protocol, **credentials).start()

    with pytest.raises(MqttLinkStoppedError, match="refused client hub-test") as caught:
        link.wait_connected(TIMEOUT)

    assert link.stopped_reason == str(caught.value)
    assert "not retrying" in str(caught.value)
    assert any(why in str(caught.value) for why in ("Not authorized", "Bad user name or password"))
    # Gave up for good: paho's network thread has ended instead of retrying every 50 ms.
    wait_until(lambda: link._client._thread is None, what="network thread ending")
    with pytest.raises(MqttLinkStoppedError):
        link.publish(HUB_STATE, b"{}")


@PROTOCOLS
def test_right_credentials_connect(secured_broker: ManagedMosquitto, links: Links, protocol: str) -> None:
    link = links.connected(secured_broker, protocol=protocol, username="hub", password="right-password")
    assert link.connected
    assert link.refused_subscriptions == ()


def test_mqtt5_reports_a_publish_the_acl_denies(secured_broker: ManagedMosquitto, links: Links) -> None:
    link = links.connected(
        secured_broker,
        protocol="5",
        username="hub",
        password="right-password",
        subscriptions=(("hh/v1/+/vehicles/+/telemetry", 1),),
    )
    with pytest.raises(MqttPublishError, match=r"broker refused the publish to .*: Not authorized"):
        link.publish(telemetry_topic("hh", "xuzhou", "xz-cmd-01"), b"{}")


# Configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"url": "http://127.0.0.1:1883"}, "mqtt://host:port"),
        ({"url": "mqtt://hub:secret@127.0.0.1:1883"}, "not inside the url"),
        ({"url": "mqtt://127.0.0.1:99999"}, "Port out of range"),
        ({"url": "mqtt://127.0.0.1:1883/x"}, "must not have a path"),
        ({"client_id": ""}, "client_id must not be empty"),
        ({"password": "x"}, "a password needs a username"),
        ({"protocol": "3.1"}, "protocol must be"),
        ({"subscriptions": (("a/#", 3),)}, "bad subscription"),
        ({"queue_max": 0}, "queue_max must be at least 1"),
        ({"reconnect_min_delay": 5.0, "reconnect_max_delay": 1.0}, "reconnect_min_delay"),
    ],
)
def test_config_refuses_what_would_fail_later(changes: dict[str, object], words: str) -> None:
    settings: dict[str, object] = {
        "url": "mqtt://127.0.0.1:1883",
        "client_id": "hub-a",
        "state_topic": HUB_STATE,
    }
    with pytest.raises(ValueError, match=words):
        MqttLinkConfig(**(settings | changes))  # type: ignore[arg-type]


def test_config_reads_the_url_and_hides_the_password() -> None:
    config = MqttLinkConfig(
        url="mqtts://broker.example", client_id="hub-a", state_topic=HUB_STATE, username="hub", password="pw"
    )
    assert (config.host, config.port, config.tls) == ("broker.example", 8883, True)
    assert "pw" not in repr(config)
    assert MqttLinkConfig(url="mqtt://127.0.0.1", client_id="h", state_topic=HUB_STATE).port == 1883
