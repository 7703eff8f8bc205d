"""What the hub, the mobile command vehicles and the linkage systems exchange over MQTT.

Topic scheme (one root per deployment, "hh" by default; drills under "<root>-exercise"):

    {root}/v1/{city}/vehicles/{vehicle}/telemetry   vehicle -> hub   Telemetry        QoS 0/1
    {root}/v1/{city}/vehicles/{vehicle}/status      vehicle -> hub   VehicleStatus    retained
    {root}/v1/{city}/vehicles/{vehicle}/state       vehicle -> hub   ConnectionState  retained, will
    {root}/v1/{city}/vehicles/{vehicle}/cmd         hub -> vehicle   Command          QoS 1, never retained
    {root}/v1/{city}/vehicles/{vehicle}/ack         vehicle -> hub   Ack              QoS 1
    {root}/v1/{city}/linkage/{system}/events        system -> hub    LinkageEvent     QoS 1
    {root}/v1/{city}/linkage/{system}/state         system -> hub    ConnectionState  retained, will
    {root}/v1/{city}/linkage/{system}/alerts        hub -> system    JointAlert       QoS 1
    {root}/v1/hub/{hub_id}/state                    hub -> all       ConnectionState  retained, will
    {root}/v1/{city}/bridge/state                   edge broker      BridgeLinkState  retained, will
                                                    -> hub           ("1"/"0", Mosquitto's own)

Every path names its city and its device, so a broker ACL with `%u` patterns can confine a
vehicle to its own topics. Payloads are compact UTF-8 JSON, at most `MAX_PAYLOAD_BYTES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from contracts.common import CitySlug, IncidentCategory, Level, WarningColour, XmlChars
from contracts.errors import ContractError, Problem, check_size, decode_json
from contracts.incidents import AffectedCities, Description, ExerciseFlag, Location, Title

DEFAULT_ROOT = "hh"
VERSION = "v1"
EXERCISE_SUFFIX = "-exercise"
# Shared subscriptions (MQTT 5 §4.8.2; Mosquitto takes them from 3.1.1 clients too).
SHARE_PREFIX = "$share"
# A position report is about 200 bytes and an incident event a few kB of Chinese text; 16 KB
# leaves room for both while keeping a hostile or broken peer from filling the hub's queue.
MAX_PAYLOAD_BYTES = 16_384

_ID = r"[a-z0-9][a-z0-9_-]{0,63}"
_ID_RE = re.compile(rf"^{_ID}$")
# The same rule as contracts.common.CitySlug, checked here without building a model.
_CITY_RE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
# "hub" is the segment of the hub's own state topic, so no city may be called that.
_HUB_SEGMENT = "hub"

DeviceId = Annotated[str, StringConstraints(pattern=rf"^{_ID}$")]
"""A vehicle's, linkage system's or hub's id: lower case, digits, "_" and "-", up to 64."""


class TopicKind(StrEnum):
    """What a topic carries; each kind has one payload model."""

    TELEMETRY = "telemetry"
    STATUS = "status"
    STATE = "state"
    COMMAND = "cmd"
    ACK = "ack"
    LINKAGE_EVENTS = "linkage_events"
    LINKAGE_STATE = "linkage_state"
    LINKAGE_ALERTS = "linkage_alerts"
    HUB_STATE = "hub_state"
    BRIDGE_STATE = "bridge_state"


_VEHICLE_LEAVES = {
    "telemetry": TopicKind.TELEMETRY,
    "status": TopicKind.STATUS,
    "state": TopicKind.STATE,
    "cmd": TopicKind.COMMAND,
    "ack": TopicKind.ACK,
}
_LINKAGE_LEAVES = {
    "events": TopicKind.LINKAGE_EVENTS,
    "state": TopicKind.LINKAGE_STATE,
    "alerts": TopicKind.LINKAGE_ALERTS,
}
_LEAF_OF = {kind: leaf for leaves in (_VEHICLE_LEAVES, _LINKAGE_LEAVES) for leaf, kind in leaves.items()}
_LEAF_OF[TopicKind.HUB_STATE] = "state"
# A city-edge broker's bridge announces its link inside its city's subtree, the only part of the
# regional tree its account may write (hub.runtime.edge_broker).
_BRIDGE_SEGMENT = "bridge"


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """Where a topic points: its kind, deployment root, city (None for the hub) and device."""

    kind: TopicKind
    root: str
    city: str | None
    device: str
    exercise: bool = False

    @property
    def topic(self) -> str:
        """Return the topic this address stands for."""
        top = _root_segment(self.root, self.exercise)
        if self.kind is TopicKind.HUB_STATE:
            return f"{top}/{VERSION}/{_HUB_SEGMENT}/{self.device}/state"
        if self.kind is TopicKind.BRIDGE_STATE:
            return f"{top}/{VERSION}/{self.city}/{_BRIDGE_SEGMENT}/state"
        group = "vehicles" if self.kind in _VEHICLE_LEAVES.values() else "linkage"
        return f"{top}/{VERSION}/{self.city}/{group}/{self.device}/{_LEAF_OF[self.kind]}"


def _refuse(topic: str, why: str) -> ContractError:
    return ContractError(f"invalid topic {topic!r}: {why}", [Problem("topic", why)])


def _check_root(root: str) -> str:
    if not _ID_RE.match(root) or root.endswith(EXERCISE_SUFFIX):
        raise ContractError(
            f"invalid topic root {root!r}: use lower case letters, digits, '_' or '-', "
            f"not ending in {EXERCISE_SUFFIX!r} (the exercise root is derived from it)"
        )
    return root


def _check_city(city: str) -> str:
    if not _CITY_RE.match(city) or city == _HUB_SEGMENT:
        raise ContractError(f"invalid city slug {city!r} in a topic")
    return city


def _check_id(device: str, what: str) -> str:
    if not _ID_RE.match(device):
        raise ContractError(f"invalid {what} id {device!r}: expected {_ID_RE.pattern}")
    return device


def _root_segment(root: str, exercise: bool) -> str:
    return exercise_root(root) if exercise else _check_root(root)


def exercise_root(root: str) -> str:
    """Return the root under which drills use the same topics as live work under `root`."""
    return f"{_check_root(root)}{EXERCISE_SUFFIX}"


def _vehicle_topic(root: str, city: str, vehicle: str, leaf: str, exercise: bool) -> str:
    top = _root_segment(root, exercise)
    return f"{top}/{VERSION}/{_check_city(city)}/vehicles/{_check_id(vehicle, 'vehicle')}/{leaf}"


def _linkage_topic(root: str, city: str, system: str, leaf: str, exercise: bool) -> str:
    top = _root_segment(root, exercise)
    return f"{top}/{VERSION}/{_check_city(city)}/linkage/{_check_id(system, 'linkage system')}/{leaf}"


def telemetry_topic(root: str, city: str, vehicle: str, *, exercise: bool = False) -> str:
    """Return the topic a vehicle publishes its positions on."""
    return _vehicle_topic(root, city, vehicle, "telemetry", exercise)


def status_topic(root: str, city: str, vehicle: str, *, exercise: bool = False) -> str:
    """Return the retained topic of a vehicle's business status."""
    return _vehicle_topic(root, city, vehicle, "status", exercise)


def state_topic(root: str, city: str, vehicle: str, *, exercise: bool = False) -> str:
    """Return the retained topic of a vehicle's connection state (its birth and last will)."""
    return _vehicle_topic(root, city, vehicle, "state", exercise)


def command_topic(root: str, city: str, vehicle: str, *, exercise: bool = False) -> str:
    """Return the topic the hub sends a vehicle its commands on."""
    return _vehicle_topic(root, city, vehicle, "cmd", exercise)


def ack_topic(root: str, city: str, vehicle: str, *, exercise: bool = False) -> str:
    """Return the topic a vehicle acknowledges commands on."""
    return _vehicle_topic(root, city, vehicle, "ack", exercise)


def linkage_events_topic(root: str, city: str, system: str, *, exercise: bool = False) -> str:
    """Return the topic a linkage system (110/119/120/122 dispatch) publishes incidents on."""
    return _linkage_topic(root, city, system, "events", exercise)


def linkage_state_topic(root: str, city: str, system: str, *, exercise: bool = False) -> str:
    """Return the retained topic of a linkage system's connection state."""
    return _linkage_topic(root, city, system, "state", exercise)


def linkage_alerts_topic(root: str, city: str, system: str, *, exercise: bool = False) -> str:
    """Return the topic the hub sends a linkage system its joint alerts on."""
    return _linkage_topic(root, city, system, "alerts", exercise)


def hub_state_topic(root: str, hub_id: str, *, exercise: bool = False) -> str:
    """Return the retained topic of the hub's own connection state."""
    top = _root_segment(root, exercise)
    return f"{top}/{VERSION}/{_HUB_SEGMENT}/{_check_id(hub_id, 'hub')}/state"


def bridge_state_topic(root: str, city: str) -> str:
    """Return the retained topic a city-edge broker's bridge publishes its link state on.

    Live root only: one bridge carries both roots, and its state is the same for both.
    """
    return f"{_check_root(root)}/{VERSION}/{_check_city(city)}/{_BRIDGE_SEGMENT}/state"


def hub_subscriptions(
    root: str = DEFAULT_ROOT, *, exercise: bool = True, telemetry: bool = True
) -> tuple[tuple[str, int], ...]:
    """Return the (filter, QoS) pairs the hub subscribes to, the exercise root's too by default.

    With `telemetry=False` the vehicles' position reports are left to ingest workers on a shared
    subscription (`shared_telemetry_subscriptions`).
    """
    leaves = [f"vehicles/+/{leaf}" for leaf in ("telemetry", "status", "state", "ack")]
    leaves += ["linkage/+/events", "linkage/+/state"]
    if not telemetry:
        leaves.remove("vehicles/+/telemetry")
    # QoS 1 on every filter: the broker delivers at the lower of the publisher's and the
    # subscriber's QoS (MQTT 3.1.1 §3.8.4), so this never upgrades QoS 0 telemetry, but it never
    # downgrades a vehicle's QoS 1 ack either.
    filters = [(f"{top}/{VERSION}/+/{leaf}", 1) for top in _tops(root, exercise) for leaf in leaves]
    return (*filters, (f"{_check_root(root)}/{VERSION}/+/{_BRIDGE_SEGMENT}/state", 1))


def shared_telemetry_subscriptions(
    root: str = DEFAULT_ROOT, *, group: str, exercise: bool = True
) -> tuple[tuple[str, int], ...]:
    """Return the telemetry filters as one shared-subscription group (`$share/<group>/...`).

    The broker hands each message to one member of the group, so several ingest workers split
    the position reports between them. Only telemetry: retained status and state are not sent
    to shared subscriptions (MQTT 5 §4.8.2), so they stay with the hub's own link.
    """
    _check_id(group, "share group")
    return tuple(
        (f"{SHARE_PREFIX}/{group}/{top}/{VERSION}/+/vehicles/+/telemetry", 1) for top in _tops(root, exercise)
    )


def city_subtrees(root: str, city: str, *, exercise: bool = True) -> tuple[str, ...]:
    """Return the filters of everything one city's devices and the hub exchange (`<root>/v1/<city>/#`).

    A city-edge broker bridges exactly these to the regional broker: every topic of a city's
    vehicles and linkage systems lies under them, and no other city's does, so two cities'
    bridges never carry the same message and cannot feed one another in a loop.
    """
    _check_city(city)
    return tuple(f"{top}/{VERSION}/{city}/#" for top in _tops(root, exercise))


def _tops(root: str, exercise: bool) -> list[str]:
    return [_check_root(root)] + ([f"{root}{EXERCISE_SUFFIX}"] if exercise else [])


def parse_topic(topic: str, *, root: str | None = None) -> TopicAddress:
    """Read a topic of the scheme into its address; refuse anything else, or another root."""
    return _parse_topic(topic, root)


# A fleet repeats the same few hundred topics all day; parsing each once saves the hub's writer
# a few microseconds a message. Refusals raise, so they are never cached.
@lru_cache(maxsize=8192)
def _parse_topic(topic: str, root: str | None) -> TopicAddress:
    parts = topic.split("/")
    if len(parts) not in (5, 6) or parts[1] != VERSION:
        raise _refuse(topic, f"not a {VERSION} topic of the form <root>/{VERSION}/<city>/<group>/<id>/<kind>")
    top = parts[0]
    exercise = top.endswith(EXERCISE_SUFFIX)
    base = top.removesuffix(EXERCISE_SUFFIX) if exercise else top
    if not _ID_RE.match(base) or base.endswith(EXERCISE_SUFFIX):
        raise _refuse(topic, f"bad root {top!r}")
    if root is not None and base != root:
        raise _refuse(topic, f"root {base!r} is not this deployment's root {root!r}")
    if len(parts) == 5 and parts[3] == _BRIDGE_SEGMENT and parts[4] == "state":
        city = parts[2]
        if exercise or not _CITY_RE.match(city) or city == _HUB_SEGMENT:
            raise _refuse(topic, f"a bridge's state is <root>/{VERSION}/<city>/{_BRIDGE_SEGMENT}/state")
        return TopicAddress(TopicKind.BRIDGE_STATE, base, city, _BRIDGE_SEGMENT)
    if len(parts) == 5:
        _, _, hub, hub_id, leaf = parts
        if hub != _HUB_SEGMENT or leaf != "state" or not _ID_RE.match(hub_id):
            raise _refuse(topic, f"a five-part topic must be <root>/{VERSION}/hub/<hub id>/state")
        return TopicAddress(TopicKind.HUB_STATE, base, None, hub_id, exercise)
    _, _, city, group, device, leaf = parts
    if not _CITY_RE.match(city) or city == _HUB_SEGMENT:
        raise _refuse(topic, f"bad city slug {city!r}")
    if not _ID_RE.match(device):
        raise _refuse(topic, f"bad id {device!r}")
    leaves = {"vehicles": _VEHICLE_LEAVES, "linkage": _LINKAGE_LEAVES}.get(group)
    if leaves is None:
        raise _refuse(topic, f"unknown group {group!r} (expected 'vehicles' or 'linkage')")
    if leaf not in leaves:
        raise _refuse(topic, f"unknown {group} topic {leaf!r} (expected one of {', '.join(leaves)})")
    return TopicAddress(leaves[leaf], base, city, device, exercise)


# Payloads --------------------------------------------------------------------------------------

Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
# Bounded to what a signed 64-bit database column holds: a larger number would pass the contract
# and then fail the insert of its whole batch.
Counter = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), XmlChars]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), XmlChars]
# A dispatch system's own incident number, e.g. "110-20250712-0031"; it is the idempotency key.
ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Telemetry(_Payload):
    """One position report of a vehicle; `seq` rises by one or more within a vehicle's session."""

    schema_version: Literal[1] = 1
    vehicle: DeviceId
    lat: Latitude
    lon: Longitude
    speed_kmh: Annotated[float, Field(strict=True, ge=0, le=400, allow_inf_nan=False)]
    heading: Annotated[float, Field(strict=True, ge=0, le=360, allow_inf_nan=False)]
    at: AwareDatetime
    seq: Counter


class VehicleState(StrEnum):
    """What a mobile command vehicle (移动指挥车) is doing."""

    STANDBY = "standby"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RETURNING = "returning"
    OUT_OF_SERVICE = "out_of_service"

    @property
    def label_zh(self) -> str:
        """Return the Chinese word duty officers use."""
        return _VEHICLE_STATE_ZH[self]


_VEHICLE_STATE_ZH = {
    VehicleState.STANDBY: "待命",
    VehicleState.EN_ROUTE: "出动途中",
    VehicleState.ON_SCENE: "到达现场",
    VehicleState.RETURNING: "返回途中",
    VehicleState.OUT_OF_SERVICE: "停用",
}


class VehicleStatus(_Payload):
    """A vehicle's business status, published retained so the hub knows it after a restart."""

    schema_version: Literal[1] = 1
    state: VehicleState
    note: Note = ""
    at: AwareDatetime


class ConnectionState(_Payload):
    """A peer's retained online state (birth) or offline state (last will).

    The peer raises `session` before every connect and puts the same number in that
    connection's will and birth, so a will that the broker publishes late, after the peer has
    reconnected, carries an older session and `supersedes` refuses it (Sparkplug B's bdSeq).
    A will has no `at`: it is written when the connection is opened, not when it is lost.
    """

    schema_version: Literal[1] = 1
    online: Annotated[bool, Strict()]
    session: Counter
    at: AwareDatetime | None = None


def supersedes(incoming: ConnectionState, current: ConnectionState | None) -> bool:
    """Return whether `incoming` should replace the `current` connection state."""
    if current is None or incoming.session > current.session:
        return True
    # The same session going offline is its own will or clean stop; the same session coming
    # online again is a redelivery (QoS 1 duplicates) and changes nothing.
    return incoming.session == current.session and not incoming.online


class CommandKind(StrEnum):
    """What the hub can ask a vehicle to do."""

    GOTO = "goto"
    SET_STATUS = "set_status"
    REPORT_POSITION = "report_position"
    OPEN_VIDEO = "open_video"
    NOTICE = "notice"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the command."""
        return _COMMAND_ZH[self]


_COMMAND_ZH = {
    CommandKind.GOTO: "前往指定地点",
    CommandKind.SET_STATUS: "设置状态",
    CommandKind.REPORT_POSITION: "立即上报位置",
    CommandKind.OPEN_VIDEO: "打开视频",
    CommandKind.NOTICE: "预警提示",
}


def _kind_is_required(schema: dict[str, Any]) -> None:
    # `kind` has a default so code can build an action without naming it twice, but on the wire
    # it is the discriminator and must be present.
    schema["required"] = ["kind", *(name for name in schema.get("required", []) if name != "kind")]


class _Action(_Payload):
    model_config = ConfigDict(json_schema_extra=_kind_is_required)


class GotoAction(_Action):
    """Drive to a point, with a note for the crew."""

    kind: Literal[CommandKind.GOTO] = CommandKind.GOTO
    lat: Latitude
    lon: Longitude
    note: Note = ""


class SetStatusAction(_Action):
    """Switch the vehicle's business status."""

    kind: Literal[CommandKind.SET_STATUS] = CommandKind.SET_STATUS
    status: VehicleState


class ReportPositionAction(_Action):
    """Send a telemetry report now, outside the usual rhythm."""

    kind: Literal[CommandKind.REPORT_POSITION] = CommandKind.REPORT_POSITION


class OpenVideoAction(_Action):
    """Start the vehicle's video uplink, to `url` or to its configured default."""

    kind: Literal[CommandKind.OPEN_VIDEO] = CommandKind.OPEN_VIDEO
    url: Annotated[str, StringConstraints(pattern=r"^(rtsp|rtmp|https?|webrtc)://\S{1,500}$")] | None = None


class NoticeAction(_Action):
    """Show the crew a warning or bulletin that concerns their city; `done` once it is shown."""

    kind: Literal[CommandKind.NOTICE] = CommandKind.NOTICE
    title: Title
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), XmlChars] = ""
    colour: WarningColour | None = None


Action = Annotated[
    GotoAction | SetStatusAction | ReportPositionAction | OpenVideoAction | NoticeAction,
    Field(discriminator="kind"),
]


class Command(_Payload):
    """A command to one vehicle; its `id` correlates the acks and dedupes QoS 1 redeliveries.

    Never published retained: a retained command would replay on every reconnect.
    """

    schema_version: Literal[1] = 1
    id: UUID
    action: Action
    issued_at: AwareDatetime
    expires_at: AwareDatetime

    @property
    def kind(self) -> CommandKind:
        """Return what the command asks for."""
        return self.action.kind

    def expired(self, now: datetime) -> bool:
        """Return whether the command is too old to carry out at `now`."""
        return now >= self.expires_at

    @model_validator(mode="after")
    def _expires_after_issue(self) -> Self:
        """Refuse a command that expires before it is issued."""
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self


class AckStage(StrEnum):
    """How far a vehicle got with a command."""

    RECEIVED = "received"
    DONE = "done"
    REJECTED = "rejected"

    @property
    def label_zh(self) -> str:
        """Return the Chinese word for the stage."""
        return _ACK_ZH[self]


_ACK_ZH = {AckStage.RECEIVED: "已接收", AckStage.DONE: "已完成", AckStage.REJECTED: "已拒绝"}


class Ack(_Payload):
    """A vehicle's answer to a command, matched to it by `command_id`."""

    schema_version: Literal[1] = 1
    command_id: UUID
    stage: AckStage
    reason: Reason | None = None
    at: AwareDatetime


class LinkageSystemKind(StrEnum):
    """The four dispatch systems a city links to the hub, by their phone numbers."""

    POLICE = "110"
    FIRE = "119"
    AMBULANCE = "120"
    TRAFFIC = "122"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the system."""
        return _SYSTEM_ZH[self]


_SYSTEM_ZH = {
    LinkageSystemKind.POLICE: "110 公安报警",
    LinkageSystemKind.FIRE: "119 消防救援",
    LinkageSystemKind.AMBULANCE: "120 医疗急救",
    LinkageSystemKind.TRAFFIC: "122 交通事故",
}


class LinkageEventStatus(StrEnum):
    """Where the dispatch system stands with the event."""

    NEW = "new"
    UPDATE = "update"
    CLOSED = "closed"


class LinkageEvent(_Payload):
    """An incident as a city's dispatch system reports it; `event_id` makes ingest idempotent."""

    schema_version: Literal[1] = 1
    event_id: ExternalId
    system: LinkageSystemKind
    category: IncidentCategory
    level: Level
    title: Title
    description: Description = ""
    location: Location = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    occurred_at: AwareDatetime
    affected_cities: AffectedCities
    status: LinkageEventStatus = LinkageEventStatus.NEW

    @model_validator(mode="after")
    def _both_coordinates_or_none(self) -> Self:
        """Refuse half a position."""
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


class JointAlert(_Payload):
    """The hub's alert to a linkage system: an incident its city is notified of, or a warning
    (预警) addressed to its city. Exactly one of `incident_id` and `bulletin_id` is given."""

    schema_version: Literal[1] = 1
    id: UUID
    incident_id: UUID | None = None
    bulletin_id: UUID | None = None
    colour: WarningColour | None = None
    level: Level
    title: Title
    reporting_city: CitySlug
    exercise: ExerciseFlag = False
    issued_at: AwareDatetime

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        """Refuse an alert about both an incident and a warning, or about neither."""
        if (self.incident_id is None) == (self.bulletin_id is None):
            raise ValueError("give exactly one of incident_id and bulletin_id")
        if self.bulletin_id is not None and self.colour is None:
            raise ValueError("an alert about a warning carries its colour")
        return self


class BridgeLinkState(_Payload):
    """Whether a city-edge broker's bridge to the regional broker is connected.

    Mosquitto writes it, not a peer of ours, so it is not JSON and carries no version: with
    `notifications true` the edge broker publishes a retained "1" on the regional broker when
    the bridge connects, and leaves a will of "0" there that the regional broker publishes when
    the connection drops (mosquitto.conf(5), `notifications`); after a clean stop of the edge
    broker the regional one holds "0" as well (tests/flows/test_bridge_state.py).
    """

    connected: Annotated[bool, Strict()]


def decode_bridge_state(payload: bytes) -> BridgeLinkState:
    """Read Mosquitto's "1"/"0" bridge notification, or raise ContractError."""
    if payload not in (b"1", b"0"):
        shown = payload[:40].decode("utf-8", "replace")
        raise ContractError(
            f"invalid BridgeLinkState: expected '1' or '0', got {shown!r}", [Problem("", "expected 1 or 0")]
        )
    return BridgeLinkState(connected=payload == b"1")


def encode_bridge_state(state: BridgeLinkState) -> bytes:
    """Return the payload Mosquitto would publish for this state (for tests and simulators)."""
    return b"1" if state.connected else b"0"


Payload = (
    Telemetry | VehicleStatus | ConnectionState | Command | Ack | LinkageEvent | JointAlert | BridgeLinkState
)

P = TypeVar("P", bound=Payload)

PAYLOAD_MODELS: dict[TopicKind, type[Payload]] = {
    TopicKind.TELEMETRY: Telemetry,
    TopicKind.STATUS: VehicleStatus,
    TopicKind.STATE: ConnectionState,
    TopicKind.COMMAND: Command,
    TopicKind.ACK: Ack,
    TopicKind.LINKAGE_EVENTS: LinkageEvent,
    TopicKind.LINKAGE_STATE: ConnectionState,
    TopicKind.LINKAGE_ALERTS: JointAlert,
    TopicKind.HUB_STATE: ConnectionState,
}
"""The payload model each kind of topic carries (but a bridge's state: see `decode_bridge_state`)."""


def encode(model: Payload) -> bytes:
    """Return the payload as compact UTF-8 JSON."""
    return model.model_dump_json().encode("utf-8")


def _decode(model: type[P], payload: bytes) -> P:
    # A zero-byte publish on a retained topic clears the retained message (MQTT 3.1.1 §3.3.1.3);
    # say so rather than "malformed JSON", since it is a deliberate act of some client.
    if not payload:
        raise ContractError(
            f"invalid {model.__name__}: empty payload (a cleared retained message)",
            [Problem("", "empty payload")],
        )
    return decode_json(model, check_size(payload, MAX_PAYLOAD_BYTES, f"{model.__name__} payload"))


def decode_telemetry(payload: bytes) -> Telemetry:
    """Read a position report, or raise ContractError."""
    return _decode(Telemetry, payload)


def decode_status(payload: bytes) -> VehicleStatus:
    """Read a vehicle's business status, or raise ContractError."""
    return _decode(VehicleStatus, payload)


def decode_connection_state(payload: bytes) -> ConnectionState:
    """Read an online/offline state, or raise ContractError."""
    return _decode(ConnectionState, payload)


def decode_command(payload: bytes) -> Command:
    """Read a command, or raise ContractError."""
    return _decode(Command, payload)


def decode_ack(payload: bytes) -> Ack:
    """Read a command acknowledgment, or raise ContractError."""
    return _decode(Ack, payload)


def decode_linkage_event(payload: bytes) -> LinkageEvent:
    """Read a dispatch system's incident event, or raise ContractError."""
    return _decode(LinkageEvent, payload)


def decode_joint_alert(payload: bytes) -> JointAlert:
    """Read a joint alert, or raise ContractError."""
    return _decode(JointAlert, payload)


def decode_message(topic: str, payload: bytes, *, root: str | None = None) -> tuple[TopicAddress, Payload]:
    """Read a message by its topic into its address and payload model, or raise ContractError."""
    address = parse_topic(topic, root=root)
    if address.kind is TopicKind.BRIDGE_STATE:
        return address, decode_bridge_state(payload)
    model = _decode(PAYLOAD_MODELS[address.kind], payload)
    # The broker's ACL ties the topic to the client's credentials; a payload naming another
    # vehicle would let one vehicle speak for another.
    if isinstance(model, Telemetry) and model.vehicle != address.device:
        raise ContractError(
            f"invalid Telemetry: vehicle {model.vehicle!r} does not match the topic's {address.device!r}",
            [Problem("vehicle", "does not match the topic")],
        )
    # Drill and live traffic must never mix: the flag and the root must agree.
    if isinstance(model, JointAlert) and model.exercise != address.exercise:
        raise ContractError(
            f"invalid JointAlert: exercise is {model.exercise} on a "
            f"{'exercise' if address.exercise else 'live'} topic",
            [Problem("exercise", "does not match the topic's root")],
        )
    return address, model
