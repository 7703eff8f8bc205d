"""A city-edge Mosquitto broker bridged to the regional broker the hub connects to.

Mosquitto does not cluster, so a city that keeps its own broker for its vehicles and linkage
systems forwards its part of the topic tree to the regional broker over a bridge: one MQTT
connection that the edge broker opens to the regional one, with an account of its own there.

The bridge carries exactly `<root>/v1/<city>/#` (and the same under the exercise root) in both
directions at QoS 1: reports, states and acks go up, commands and joint alerts come down. Each
city's bridge carries only its own city's subtree, so no message can travel from one bridge to
another and back, and Mosquitto does not echo a bridged message back over the bridge it came in
on (`try_private`: the bridge announces itself by a private protocol level, 0x84, and the
regional Mosquitto then never sends it its own messages). `cleansession false` with a
fixed `remote_clientid` keeps the bridge's session on both sides while the link is down: the
regional broker queues the commands for the city, the edge broker the reports for the region,
and each hands them over when the bridge is back (persistence on both brokers keeps the queues
across a clean restart, and across a crash up to `autosave_interval`).

The bridge speaks MQTT 3.1.1, not 5. Mosquitto 2.0.11 (Debian's, the one deployed here) sends a
CONNECT with `bridge_protocol_version mqttv50` that a 2.0.11 regional broker drops as a protocol
error, with or without `try_private`; MQTT 5 bridges only talk from 2.0.14 on
(eclipse-mosquitto/mosquitto#2563), and even there a v5 bridge loses the messages of an outage
longer than its keepalive (#2793, open), because its CONNECT carries no session expiry interval
and its session does not outlive the connection (#2980, #2424, open).
A 3.1.1 persistent session has no expiry, which is what an outage of minutes needs. The vehicles
speak 3.1.1 too; nothing on the bridged topics needs MQTT 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.mqtt import DEFAULT_ROOT, bridge_state_topic, city_subtrees
from hub.capabilities import BrokerAccount


@dataclass(frozen=True)
class EdgeBridge:
    """One city's bridge from its edge broker to the regional broker."""

    city: str
    regional_host: str
    regional_port: int
    password: str = field(repr=False)
    root: str = DEFAULT_ROOT
    # Seconds before the bridge tries again after losing the regional broker: a backoff from
    # the first value up to the second (Mosquitto's "decorrelated jitter").
    restart_timeout: tuple[int, int] = (1, 15)
    keepalive: int = 30

    def __post_init__(self) -> None:
        """Refuse a city or root that could not name a topic (ContractError is a ValueError)."""
        city_subtrees(self.root, self.city)

    @property
    def name(self) -> str:
        """Return the bridge's connection name in the edge broker's configuration."""
        return f"edge-{self.city}"

    @property
    def username(self) -> str:
        """Return the bridge's account on the regional broker."""
        return f"bridge-{self.city}"

    @property
    def client_id(self) -> str:
        """Return the fixed client id the regional broker keeps the bridge's session under."""
        return f"bridge-{self.city}"

    @property
    def notification_topic(self) -> str:
        """Return where the bridge announces whether it is connected: `<root>/v1/<city>/bridge/state`."""
        return bridge_state_topic(self.root, self.city)

    @property
    def topics(self) -> tuple[str, ...]:
        """Return the filters the bridge carries: the city's live and exercise subtrees."""
        return city_subtrees(self.root, self.city)


def bridge_config_lines(bridge: EdgeBridge) -> tuple[str, ...]:
    """Return the `connection` section of the edge broker's mosquitto.conf for this bridge."""
    base, cap = bridge.restart_timeout
    lines = [
        f"connection {bridge.name}",
        f"address {bridge.regional_host}:{bridge.regional_port}",
        # MQTT 3.1.1, not 5: see the module's docstring.
        "bridge_protocol_version mqttv311",
        f"remote_clientid {bridge.client_id}",
        f"remote_username {bridge.username}",
        f"remote_password {bridge.password}",
        # Keep the session on the regional broker (its subscriptions and the QoS 1 commands
        # queued for the city) and on the edge broker (the reports queued for the region)
        # while the link is down.
        "cleansession false",
        "local_cleansession false",
        "start_type automatic",
        f"restart_timeout {base} {cap}",
        f"keepalive_interval {bridge.keepalive}",
        # The link's state, retained "1" when it connects, on both brokers; on the regional one
        # Mosquitto also leaves a will of "0", published when the edge broker goes away. Inside
        # the city's subtree, the only part of the regional tree the bridge's account may write
        # (the default, $SYS/broker/connection/<id>/state, would be refused there).
        "notifications true",
        "notifications_local_only false",
        f"notification_topic {bridge.notification_topic}",
        # The regional broker learns it talks to a bridge: it sends the bridge none of the
        # bridge's own messages back (no loop) and keeps the retain flag of states and statuses.
        "try_private true",
    ]
    lines += [f"topic {topic} both 1" for topic in bridge.topics]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"mosquitto.conf values cannot contain line breaks: {line!r}")
    return tuple(lines)


def render_bridge_config(bridge: EdgeBridge) -> str:
    """Return the bridge section as text, to append to an edge broker's mosquitto.conf."""
    header = f"# Bridge of {bridge.city}'s edge broker to the regional broker (hub.runtime.edge_broker)."
    return "\n".join((header, *bridge_config_lines(bridge))) + "\n"


def bridge_account(bridge: EdgeBridge, password_hash: str) -> BrokerAccount:
    """Return the account the regional broker needs for this bridge: its city's subtrees only."""
    return BrokerAccount(bridge.username, password_hash, write=bridge.topics, read=bridge.topics)


def read_bridge_passwords(text: str) -> dict[str, str]:
    """Parse '<city> <password>' lines (blank lines and '#' comments skipped) into a dict."""
    passwords: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        city, _, password = line.partition(" ")
        password = password.strip()
        if not password:
            raise ValueError(f"line {number}: expected '<city> <password>'")
        if city in passwords:
            raise ValueError(f"line {number}: {city} appears twice")
        city_subtrees(DEFAULT_ROOT, city)  # refuses a malformed city slug
        passwords[city] = password
    return passwords
