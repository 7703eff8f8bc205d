"""The MQTT topic scheme, payload models and codec, against the samples in tests/samples/mqtt."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from contracts.errors import ContractError
from contracts.mqtt import (
    MAX_PAYLOAD_BYTES,
    PAYLOAD_MODELS,
    Ack,
    AckStage,
    Command,
    CommandKind,
    ConnectionState,
    GotoAction,
    JointAlert,
    LinkageEvent,
    LinkageSystemKind,
    Telemetry,
    TopicAddress,
    TopicKind,
    VehicleState,
    VehicleStatus,
    ack_topic,
    command_topic,
    decode_ack,
    decode_command,
    decode_connection_state,
    decode_joint_alert,
    decode_linkage_event,
    decode_message,
    decode_status,
    decode_telemetry,
    encode,
    hub_state_topic,
    hub_subscriptions,
    linkage_alerts_topic,
    linkage_events_topic,
    linkage_state_topic,
    parse_topic,
    shared_telemetry_subscriptions,
    state_topic,
    status_topic,
    supersedes,
    telemetry_topic,
)
from contracts.schemas import SCHEMAS

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "mqtt"
NOW = datetime(2025, 7, 12, 4, 5, tzinfo=UTC)

# The topic each schema's samples travel on, for decode_message.
TOPIC_OF = {
    "mqtt-telemetry": "hh/v1/xuzhou/vehicles/xz-cmd-01/telemetry",
    "mqtt-vehicle-status": "hh/v1/xuzhou/vehicles/xz-cmd-01/status",
    "mqtt-connection-state": "hh/v1/xuzhou/vehicles/xz-cmd-01/state",
    "mqtt-command": "hh/v1/xuzhou/vehicles/xz-cmd-01/cmd",
    "mqtt-ack": "hh/v1/xuzhou/vehicles/xz-cmd-01/ack",
    "mqtt-linkage-event": "hh/v1/suqian/linkage/sq-119/events",
    "mqtt-joint-alert": "hh/v1/xuzhou/linkage/xz-110/alerts",
}

# Each malformed sample and words its error message must contain.
INVALID = {
    "mqtt-telemetry.lat-91.json": "lat: Input should be less than or equal to 90",
    "mqtt-telemetry.naive-datetime.json": "at: Input should have timezone info",
    "mqtt-telemetry.string-number.json": "lat: Input should be a valid number",
    "mqtt-telemetry.negative-seq.json": "seq: Input should be greater than or equal to 0",
    "mqtt-telemetry.too-fast.json": "speed_kmh: Input should be less than or equal to 400",
    "mqtt-telemetry.bad-vehicle-id.json": "vehicle: String should match pattern",
    "mqtt-telemetry.truncated.json": "malformed JSON",
    "mqtt-telemetry.garbage.bin": "malformed JSON",
    "mqtt-vehicle-status.unknown-state.json": "state: Input should be 'standby'",
    "mqtt-vehicle-status.schema-version-2.json": "schema_version: Input should be 1",
    "mqtt-connection-state.online-string.json": "online: Input should be a valid boolean",
    "mqtt-command.expires-before-issue.json": "expires_at must be after issued_at",
    "mqtt-command.goto-without-lat.json": "action.goto.lat: required but missing",
    "mqtt-command.unknown-kind.json": "action: Input tag 'self_destruct'",
    "mqtt-command.argument-of-another-kind.json": "action.report_position.status: Extra inputs",
    "mqtt-command.video-url-scheme.json": "action.open_video.url: String should match pattern",
    "mqtt-ack.unknown-stage.json": "stage: Input should be 'received', 'done' or 'rejected'",
    "mqtt-ack.bad-command-id.json": "command_id: Input should be a valid UUID",
    "mqtt-linkage-event.half-position.json": "give both lat and lon, or neither",
    "mqtt-linkage-event.system-999.json": "system: Input should be '110', '119', '120' or '122'",
    "mqtt-linkage-event.level-v.json": "level must be one of I, II, III, IV",
    "mqtt-joint-alert.exercise-string.json": "exercise: Input should be a valid boolean",
    "mqtt-joint-alert.both-subjects.json": "give exactly one of incident_id and bulletin_id",
}


def _schema_name(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _valid_samples() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


# Topics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "built"),
    [
        ("hh/v1/xuzhou/vehicles/xz-cmd-01/telemetry", telemetry_topic("hh", "xuzhou", "xz-cmd-01")),
        ("hh/v1/xuzhou/vehicles/xz-cmd-01/status", status_topic("hh", "xuzhou", "xz-cmd-01")),
        ("hh/v1/xuzhou/vehicles/xz-cmd-01/state", state_topic("hh", "xuzhou", "xz-cmd-01")),
        ("hh/v1/xuzhou/vehicles/xz-cmd-01/cmd", command_topic("hh", "xuzhou", "xz-cmd-01")),
        ("hh/v1/xuzhou/vehicles/xz-cmd-01/ack", ack_topic("hh", "xuzhou", "xz-cmd-01")),
        ("hh/v1/suqian/linkage/sq-119/events", linkage_events_topic("hh", "suqian", "sq-119")),
        ("hh/v1/suqian/linkage/sq-119/state", linkage_state_topic("hh", "suqian", "sq-119")),
        ("hh/v1/suqian/linkage/sq-119/alerts", linkage_alerts_topic("hh", "suqian", "sq-119")),
        ("hh/v1/hub/main/state", hub_state_topic("hh", "main")),
        (
            "hh-exercise/v1/suzhou-ah/vehicles/sz_2/telemetry",
            telemetry_topic("hh", "suzhou-ah", "sz_2", exercise=True),
        ),
        ("hh-exercise/v1/hub/main/state", hub_state_topic("hh", "main", exercise=True)),
    ],
)
def test_builders_write_the_scheme_and_parse_topic_reads_it_back(topic: str, built: str) -> None:
    assert built == topic
    assert parse_topic(topic).topic == topic


def test_parse_topic_names_kind_city_device_and_exercise() -> None:
    assert parse_topic("hh-exercise/v1/linyi/vehicles/ly-01/ack") == TopicAddress(
        TopicKind.ACK, "hh", "linyi", "ly-01", exercise=True
    )
    assert parse_topic("hh/v1/heze/linkage/hz-120/events") == TopicAddress(
        TopicKind.LINKAGE_EVENTS, "hh", "heze", "hz-120"
    )
    assert parse_topic("prod2/v1/hub/hub-a/state") == TopicAddress(
        TopicKind.HUB_STATE, "prod2", None, "hub-a"
    )


@pytest.mark.parametrize(
    ("topic", "words"),
    [
        ("hh/v2/xuzhou/vehicles/v1/telemetry", "not a v1 topic"),
        ("hh/v1/xuzhou/vehicles/v1", "five-part topic must be"),
        ("hh/v1/xuzhou/vehicles/v1/telemetry/extra", "not a v1 topic"),
        ("hh/v1/Xuzhou/vehicles/v1/telemetry", "bad city slug"),
        ("hh/v1/hub/vehicles/v1/telemetry", "bad city slug 'hub'"),
        ("hh/v1/xuzhou/vehicles/+/telemetry", "bad id '+'"),
        ("hh/v1/xuzhou/vehicles/v1/#", "unknown vehicles topic '#'"),
        ("hh/v1/xuzhou/vehicles/v1/events", "unknown vehicles topic 'events'"),
        ("hh/v1/xuzhou/linkage/s1/cmd", "unknown linkage topic 'cmd'"),
        ("hh/v1/xuzhou/drones/d1/telemetry", "unknown group 'drones'"),
        ("hh/v1/hub/main/status", "five-part topic must be"),
        ("hh/v1/city/main/state", "five-part topic must be"),
        ("$SYS/v1/hub/main/state", "bad root"),
        ("hh-exercise-exercise/v1/hub/main/state", "bad root"),
        ("", "not a v1 topic"),
        ("hh/v1/xuzhou/vehicles//telemetry", "bad id ''"),
        ("hh/v1/徐州/vehicles/v1/telemetry", "bad city slug"),
    ],
)
def test_parse_topic_refuses_what_is_not_in_the_scheme(topic: str, words: str) -> None:
    with pytest.raises(ContractError, match="invalid topic") as caught:
        parse_topic(topic)
    assert words in str(caught.value)


def test_parse_topic_refuses_another_deployments_root() -> None:
    assert parse_topic("hh-exercise/v1/hub/main/state", root="hh").exercise
    with pytest.raises(ContractError, match="not this deployment's root 'hh'"):
        parse_topic("other/v1/hub/main/state", root="hh")


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: telemetry_topic("hh", "xuzhou", "V1"), "invalid vehicle id 'V1'"),
        (lambda: telemetry_topic("hh", "xuzhou", "a/b"), "invalid vehicle id"),
        (lambda: telemetry_topic("hh", "xuzhou", "x" * 65), "invalid vehicle id"),
        (lambda: command_topic("hh", "hub", "v1"), "invalid city slug 'hub'"),
        (lambda: linkage_events_topic("hh", "xuzhou", "#"), "invalid linkage system id"),
        (lambda: hub_state_topic("hh/x", "main"), "invalid topic root"),
        (lambda: hub_state_topic("hh-exercise", "main"), "not ending in '-exercise'"),
        (lambda: hub_subscriptions("+"), "invalid topic root"),
    ],
)
def test_builders_refuse_ids_outside_the_scheme(build: Callable[[], object], words: str) -> None:
    with pytest.raises(ContractError) as caught:
        build()
    assert words in str(caught.value)


def test_hub_subscriptions_cover_every_inbound_kind_and_no_outbound_one() -> None:
    filters = dict(hub_subscriptions("hh"))
    assert set(filters.values()) == {1}
    inbound = {
        "hh/v1/xuzhou/vehicles/v1/telemetry",
        "hh/v1/xuzhou/vehicles/v1/status",
        "hh/v1/xuzhou/vehicles/v1/state",
        "hh/v1/xuzhou/vehicles/v1/ack",
        "hh/v1/xuzhou/linkage/s1/events",
        "hh/v1/xuzhou/linkage/s1/state",
    }
    outbound = {"hh/v1/xuzhou/vehicles/v1/cmd", "hh/v1/xuzhou/linkage/s1/alerts", "hh/v1/hub/main/state"}
    exercise = {topic.replace("hh/", "hh-exercise/", 1) for topic in inbound}
    for topic in inbound | exercise:
        assert any(_matches(f, topic) for f in filters), topic
    for topic in outbound:
        assert not any(_matches(f, topic) for f in filters), topic
    assert all(f.startswith("hh/") for f, _ in hub_subscriptions("hh", exercise=False))


def test_with_ingest_workers_the_hub_leaves_telemetry_to_one_shared_group() -> None:
    own = dict(hub_subscriptions("hh", telemetry=False))
    shared = dict(shared_telemetry_subscriptions("hh", group="hub-main-ingest"))
    assert not any(_matches(f, "hh/v1/xuzhou/vehicles/v1/telemetry") for f in own)
    assert any(_matches(f, "hh/v1/xuzhou/vehicles/v1/state") for f in own)
    prefix = "$share/hub-main-ingest/"
    assert all(f.startswith(prefix) for f in shared)
    unshared = {f.removeprefix(prefix) for f in shared}
    assert unshared == {f for f in dict(hub_subscriptions("hh")) if f not in own}
    with pytest.raises(ContractError, match="share group"):
        shared_telemetry_subscriptions("hh", group="a/b")


def _matches(topic_filter: str, topic: str) -> bool:
    """Match an MQTT filter with `+` wildcards only (MQTT 3.1.1 §4.7.1.3)."""
    wanted, parts = topic_filter.split("/"), topic.split("/")
    return len(wanted) == len(parts) and all(w in ("+", p) for w, p in zip(wanted, parts, strict=True))


# Samples ---------------------------------------------------------------------------------------


def test_every_mqtt_schema_has_samples_and_a_topic() -> None:
    mqtt_schemas = {name for name in SCHEMAS if name.startswith("mqtt-")}
    assert {_schema_name(path) for path in _valid_samples()} == mqtt_schemas
    assert set(TOPIC_OF) == mqtt_schemas
    assert {model for model in PAYLOAD_MODELS.values()} == {SCHEMAS[name] for name in mqtt_schemas}


@pytest.mark.parametrize("path", _valid_samples(), ids=lambda p: p.name)
def test_valid_sample_decodes_by_topic_and_round_trips(path: Path) -> None:
    topic = TOPIC_OF[_schema_name(path)]
    if path.name == "mqtt-telemetry.parked.json":
        topic = "hh/v1/lianyungang/vehicles/lyg-cmd-02/telemetry"
    if path.name == "mqtt-joint-alert.exercise.json":
        topic = topic.replace("hh/", "hh-exercise/", 1)
    address, model = decode_message(topic, path.read_bytes())
    assert type(model) is SCHEMAS[_schema_name(path)]
    assert address.topic == topic
    again = decode_message(topic, encode(model))[1]
    assert again == model


def test_every_invalid_sample_has_an_expectation() -> None:
    assert {path.name for path in (SAMPLES / "invalid").iterdir()} == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_sample_is_refused_with_a_clear_message(name: str) -> None:
    schema = name.split(".", 1)[0]
    with pytest.raises(ContractError) as caught:
        decode_message(TOPIC_OF[schema], (SAMPLES / "invalid" / name).read_bytes())
    assert INVALID[name] in str(caught.value)
    assert str(caught.value).startswith(f"invalid {SCHEMAS[schema].__name__}: ")


def test_samples_carry_chinese_text_and_labels() -> None:
    event = decode_linkage_event((SAMPLES / "mqtt-linkage-event.json").read_bytes())
    assert event.title == "宿迁市宿城区化工仓库火灾"
    assert event.system.label_zh == "119 消防救援"
    assert event.level.label_zh == "较大"
    status = decode_status((SAMPLES / "mqtt-vehicle-status.json").read_bytes())
    assert status.state.label_zh == "出动途中"
    ack = decode_ack((SAMPLES / "mqtt-ack.rejected.json").read_bytes())
    assert (ack.stage.label_zh, ack.reason) == ("已拒绝", "道路积水过深，车辆无法通行")
    goto = decode_command((SAMPLES / "mqtt-command.goto.json").read_bytes())
    assert goto.kind.label_zh == "前往指定地点"
    assert isinstance(goto.action, GotoAction)
    assert goto.action.note == "到铜山区政府东门集结"


def test_each_decoder_reads_its_own_kind() -> None:
    read = {
        "mqtt-telemetry.json": decode_telemetry,
        "mqtt-vehicle-status.json": decode_status,
        "mqtt-connection-state.will.json": decode_connection_state,
        "mqtt-command.open-video.json": decode_command,
        "mqtt-ack.received.json": decode_ack,
        "mqtt-linkage-event.closed.json": decode_linkage_event,
        "mqtt-joint-alert.json": decode_joint_alert,
    }
    for name, decoder in read.items():
        model = decoder((SAMPLES / name).read_bytes())
        assert type(model) is SCHEMAS[_schema_name(Path(name))]


# Codec -----------------------------------------------------------------------------------------


def _telemetry(**changes: object) -> Telemetry:
    fields: dict[str, object] = {
        "vehicle": "xz-cmd-01",
        "lat": 34.2,
        "lon": 117.2,
        "speed_kmh": 40.0,
        "heading": 90.0,
        "at": NOW,
        "seq": 1,
    }
    return Telemetry.model_validate(fields | changes)


def test_encode_writes_compact_utf8_json() -> None:
    status = VehicleStatus(state=VehicleState.ON_SCENE, note="已到达 现场", at=NOW)
    expected = '{"schema_version":1,"state":"on_scene","note":"已到达 现场","at":"2025-07-12T04:05:00Z"}'
    assert encode(status) == expected.encode()
    assert len(encode(_telemetry())) < 200


def test_wrong_kind_of_payload_for_its_topic_is_refused() -> None:
    raw = encode(_telemetry())
    with pytest.raises(ContractError, match=r"invalid Ack: .*Extra inputs are not permitted"):
        decode_message("hh/v1/xuzhou/vehicles/xz-cmd-01/ack", raw)
    with pytest.raises(ContractError, match="invalid ConnectionState"):
        decode_message("hh/v1/hub/main/state", raw)


def test_telemetry_for_another_vehicle_than_its_topic_is_refused() -> None:
    with pytest.raises(ContractError, match="vehicle 'xz-cmd-01' does not match the topic's 'xz-cmd-02'"):
        decode_message("hh/v1/xuzhou/vehicles/xz-cmd-02/telemetry", encode(_telemetry()))


def test_joint_alert_flag_must_agree_with_its_root() -> None:
    raw = (SAMPLES / "mqtt-joint-alert.json").read_bytes()
    with pytest.raises(ContractError, match="exercise is False on a exercise topic"):
        decode_message("hh-exercise/v1/xuzhou/linkage/xz-110/alerts", raw)
    drill = (SAMPLES / "mqtt-joint-alert.exercise.json").read_bytes()
    with pytest.raises(ContractError, match="exercise is True on a live topic"):
        decode_message("hh/v1/xuzhou/linkage/xz-110/alerts", drill)


def test_bad_topic_is_refused_before_the_payload_is_read() -> None:
    with pytest.raises(ContractError, match="invalid topic"):
        decode_message("hh/v1/xuzhou/vehicles/xz-cmd-01/selfie", encode(_telemetry()))


def test_empty_payload_is_named_as_a_cleared_retained_message() -> None:
    with pytest.raises(ContractError, match="empty payload \\(a cleared retained message\\)"):
        decode_message("hh/v1/xuzhou/vehicles/xz-cmd-01/status", b"")


def test_payload_up_to_the_cap_decodes_and_one_byte_more_is_refused() -> None:
    def event_of_size(size: int) -> bytes:
        body = json.loads((SAMPLES / "mqtt-linkage-event.json").read_bytes())
        body["description"] = ""
        base = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        # Three bytes a character in UTF-8, padded out with ASCII to the exact size.
        wanted = size - base
        body["description"] = "火" * (wanted // 3) + "x" * (wanted % 3)
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        assert len(raw) == size
        return raw

    event = decode_linkage_event(event_of_size(MAX_PAYLOAD_BYTES))
    assert event.description.startswith("火火火")
    with pytest.raises(ContractError, match=f"more than the limit of {MAX_PAYLOAD_BYTES} bytes"):
        decode_linkage_event(event_of_size(MAX_PAYLOAD_BYTES + 1))


def test_a_payload_of_mqtt_311_size_is_refused_without_parsing() -> None:
    # MQTT 3.1.1 allows 256 MB in one PUBLISH (§2.2.3); the cap is checked on the length alone.
    huge = b"{" + b" " * (8 * 1024 * 1024)
    with pytest.raises(ContractError, match="is 8388609 bytes, more than the limit"):
        decode_telemetry(huge)


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"\x00" * 32, b"null", b"[]", b"42", "好".encode("gbk")])
def test_garbage_bytes_raise_contract_error(raw: bytes) -> None:
    for decoder in (decode_telemetry, decode_command, decode_linkage_event):
        with pytest.raises(ContractError):
            decoder(raw)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"lat": 91}, "lat"),
        ({"lat": -90.0001}, "lat"),
        ({"lon": 180.5}, "lon"),
        ({"heading": 360.1}, "heading"),
        ({"heading": -1}, "heading"),
        ({"speed_kmh": -0.1}, "speed_kmh"),
        ({"seq": True}, "seq"),
        ({"seq": 1.5}, "seq"),
        ({"at": datetime(2025, 7, 12, 4, 5)}, "timezone"),
        ({"lat": float("nan")}, "finite"),
    ],
)
def test_telemetry_invariants_live_in_the_type(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _telemetry(**changes)


def test_models_are_frozen() -> None:
    telemetry = _telemetry()
    with pytest.raises(ValueError, match="frozen"):
        telemetry.lat = 0.0  # type: ignore[misc]


# Connection state and commands -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("incoming", "current", "applies"),
    [
        (ConnectionState(online=True, session=1), None, True),
        (ConnectionState(online=False, session=1), None, True),
        (ConnectionState(online=True, session=2), ConnectionState(online=False, session=1), True),
        (ConnectionState(online=False, session=2), ConnectionState(online=True, session=2), True),
        # A late will of the previous connection must not mark the reconnected peer offline.
        (ConnectionState(online=False, session=1), ConnectionState(online=True, session=2), False),
        (ConnectionState(online=True, session=1), ConnectionState(online=True, session=2), False),
        (ConnectionState(online=True, session=2), ConnectionState(online=False, session=2), False),
    ],
)
def test_supersedes_orders_states_by_session(
    incoming: ConnectionState, current: ConnectionState | None, applies: bool
) -> None:
    assert supersedes(incoming, current) is applies


def test_will_needs_no_time() -> None:
    will = decode_connection_state(b'{"online":false,"session":7}')
    assert (will.online, will.session, will.at) == (False, 7, None)


def test_command_builds_per_kind_and_knows_when_it_expired() -> None:
    command = Command(
        id=uuid4(),
        action=GotoAction(lat=34.26, lon=117.19, note="集结"),
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=30),
    )
    assert command.kind is CommandKind.GOTO
    assert json.loads(encode(command))["action"] == {
        "kind": "goto",
        "lat": 34.26,
        "lon": 117.19,
        "note": "集结",
    }
    assert not command.expired(NOW + timedelta(minutes=29))
    assert command.expired(NOW + timedelta(minutes=30))


def test_command_schema_requires_the_discriminator() -> None:
    schema = json.loads(json.dumps(Command.model_json_schema()))
    for action in ("GotoAction", "SetStatusAction", "ReportPositionAction", "OpenVideoAction"):
        assert schema["$defs"][action]["required"][0] == "kind"
    assert schema["properties"]["action"]["discriminator"]["propertyName"] == "kind"


def test_linkage_and_alert_models_build_from_python() -> None:
    alert = JointAlert(
        id=uuid4(), incident_id=uuid4(), level="II", title="内涝", reporting_city="xuzhou", issued_at=NOW
    )
    assert json.loads(encode(alert))["level"] == "II"
    assert LinkageSystemKind("122").label_zh == "122 交通事故"
    assert Ack(command_id=uuid4(), stage=AckStage.DONE, at=NOW).reason is None
    with pytest.raises(ValueError, match="lat"):
        LinkageEvent.model_validate(
            json.loads((SAMPLES / "mqtt-linkage-event.json").read_bytes()) | {"lat": 95, "lon": 118}
        )


# A city-edge broker's bridge state ---------------------------------------------------------------


def test_a_bridge_state_is_mosquittos_one_or_zero_inside_the_citys_subtree() -> None:
    from contracts.mqtt import BridgeLinkState, bridge_state_topic, city_subtrees, encode_bridge_state

    topic = bridge_state_topic("hh", "xuzhou")
    assert topic == "hh/v1/xuzhou/bridge/state"
    assert _matches("hh/v1/+/bridge/state", topic) and ("hh/v1/+/bridge/state", 1) in hub_subscriptions("hh")
    assert city_subtrees("hh", "xuzhou")[0].removesuffix("#") in topic  # the bridge's account may write it
    address, state = decode_message(topic, b"1", root="hh")
    assert address == TopicAddress(TopicKind.BRIDGE_STATE, "hh", "xuzhou", "bridge")
    assert address.topic == topic and state == BridgeLinkState(connected=True)
    assert decode_message(topic, b"0")[1] == BridgeLinkState(connected=False)
    assert encode_bridge_state(BridgeLinkState(connected=False)) == b"0"
    for payload in (b"", b"true", b'{"connected": true}', b"10"):
        with pytest.raises(ContractError, match="BridgeLinkState"):
            decode_message(topic, payload)
    for bad in ("hh-exercise/v1/xuzhou/bridge/state", "hh/v1/hub/bridge/state", "hh/v1/Xu/bridge/state"):
        with pytest.raises(ContractError):
            parse_topic(bad)
