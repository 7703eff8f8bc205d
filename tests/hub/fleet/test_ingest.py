"""Ingest of vehicle and linkage traffic: once per message, stale wills refused, acks matched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.mqtt import (
    Ack,
    AckStage,
    ConnectionState,
    GotoAction,
    LinkageEvent,
    Telemetry,
    VehicleState,
    VehicleStatus,
    ack_topic,
    decode_message,
    encode,
    linkage_events_topic,
    state_topic,
    status_topic,
    telemetry_topic,
)
from hub.extensions import db
from hub.fleet import commands, ingest
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, VehicleCommand, VehiclePosition
from hub.incidents import notifications
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden
from hub.kernel.models import DeadLetter, FlowRequest, MqttOutbox, Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)
ROOT = "hh"


def _inbound(topic: str, model: object) -> ingest.Inbound:
    raw = encode(model)  # type: ignore[arg-type]
    address, payload = decode_message(topic, raw)
    return ingest.Inbound(address, payload, raw)


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def vehicle(app, city):
    registered, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    return registered


def _telemetry(seq: int, at: datetime, lat: float = 35.06) -> Telemetry:
    return Telemetry(vehicle="v01", lat=lat, lon=118.33, speed_kmh=42.0, heading=90.0, at=at, seq=seq)


def test_telemetry_delivered_twice_is_stored_once(vehicle) -> None:
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    topic = telemetry_topic(ROOT, "linyi", "v01")
    batch = [_inbound(topic, _telemetry(1, at)), _inbound(topic, _telemetry(1, at))]
    ingest.apply_batch(db.session, batch, root=ROOT)
    db.session.commit()
    ingest.apply_batch(db.session, [_inbound(topic, _telemetry(1, at))], root=ROOT)
    db.session.commit()
    assert _count(VehiclePosition) == 1
    assert vehicle.latitude == 35.06


def test_older_position_does_not_move_the_vehicle_back(vehicle) -> None:
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    topic = telemetry_topic(ROOT, "linyi", "v01")
    ingest.apply_batch(
        db.session,
        [
            _inbound(topic, _telemetry(2, at, lat=35.2)),
            _inbound(topic, _telemetry(1, at - timedelta(seconds=1), lat=35.1)),
        ],
        root=ROOT,
    )
    db.session.commit()
    assert vehicle.latitude == 35.2
    assert _count(VehiclePosition) == 2


def test_status_and_a_late_will_from_an_older_session(vehicle) -> None:
    topic = state_topic(ROOT, "linyi", "v01")
    now = datetime.now(UTC)
    ingest.apply_batch(
        db.session, [_inbound(topic, ConnectionState(online=True, session=2, at=now))], root=ROOT
    )
    ingest.apply_batch(db.session, [_inbound(topic, ConnectionState(online=False, session=1))], root=ROOT)
    assert (vehicle.online, vehicle.session) == (True, 2)
    ingest.apply_batch(db.session, [_inbound(topic, ConnectionState(online=False, session=2))], root=ROOT)
    assert vehicle.online is False
    status = VehicleStatus(state=VehicleState.EN_ROUTE, note="赶赴现场", at=now)
    ingest.apply_batch(db.session, [_inbound(status_topic(ROOT, "linyi", "v01"), status)], root=ROOT)
    assert (vehicle.status, vehicle.status_note) == ("en_route", "赶赴现场")


def test_unknown_vehicle_goes_to_dead_letters(vehicle) -> None:
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    counts = ingest.apply_batch(
        db.session,
        [
            _inbound(
                telemetry_topic(ROOT, "heze", "v99"), _telemetry(1, at).model_copy(update={"vehicle": "v99"})
            )
        ],
        root=ROOT,
    )
    db.session.commit()
    assert counts["dead_letter"] == 1
    letter = db.session.scalars(select(DeadLetter)).one()
    assert letter.reason == "unknown vehicle"
    assert letter.topic == "hh/v1/heze/vehicles/v99/telemetry"


def test_command_lifecycle_and_duplicate_acks(vehicle, make_user) -> None:
    coordinator = Actor.for_user(make_user("ly", "linyi"))
    command = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.1, lon=118.3, note="前往沂河大桥"), root=ROOT
    )
    db.session.commit()
    outbox = db.session.scalars(select(MqttOutbox)).one()
    assert outbox.topic == "hh/v1/linyi/vehicles/v01/cmd"
    assert outbox.command_id == command.command_id
    topic = ack_topic(ROOT, "linyi", "v01")
    now = datetime.now(UTC)
    for stage in (AckStage.RECEIVED, AckStage.RECEIVED, AckStage.DONE, AckStage.RECEIVED, AckStage.DONE):
        ingest.apply_batch(
            db.session, [_inbound(topic, Ack(command_id=command.command_id, stage=stage, at=now))], root=ROOT
        )
    assert command.state == CommandState.DONE


def test_other_citys_coordinator_cannot_command(vehicle, make_user) -> None:
    stranger = Actor.for_user(make_user("hz", "heze"))
    with pytest.raises(Forbidden):
        commands.send_command(db.session, stranger, vehicle.id, GotoAction(lat=35.0, lon=118.0), root=ROOT)
    db.session.rollback()
    assert _count(VehicleCommand) == 0
    assert _count(MqttOutbox) == 0


def test_pending_commands_are_resent_on_reconnect_unless_expired(vehicle, make_user) -> None:
    coordinator = Actor.for_user(make_user("ly", "linyi"))
    live = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.0, lon=118.0), root=ROOT
    )
    old = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.0, lon=118.0), root=ROOT
    )
    old.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    topic = state_topic(ROOT, "linyi", "v01")
    ingest.apply_batch(db.session, [_inbound(topic, ConnectionState(online=True, session=5))], root=ROOT)
    db.session.commit()
    queued = db.session.scalars(select(MqttOutbox.command_id)).all()
    assert queued.count(live.command_id) == 2
    assert queued.count(old.command_id) == 1
    assert commands.expire(db.session) == 1
    assert old.state == CommandState.EXPIRED


def _event(event_id: str, level: str = "II", status: str = "new", **extra: object) -> LinkageEvent:
    return LinkageEvent.model_validate(
        {
            "event_id": event_id,
            "system": "119",
            "category": "accident_disaster",
            "level": level,
            "title": "化工园区火灾",
            "location": "临沂经开区",
            "status": status,
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "affected_cities": ["linyi"],
            **extra,
        }
    )


def test_linkage_event_creates_then_updates_one_incident(app, city) -> None:
    fleet.register_linkage_system(db.session, ADMIN, city("linyi"), "fire119", "119", "临沂119")
    db.session.commit()
    topic = linkage_events_topic(ROOT, "linyi", "fire119")
    first = _event("E-1")
    counts = ingest.apply_batch(db.session, [_inbound(topic, first), _inbound(topic, first)], root=ROOT)
    db.session.commit()
    assert (counts["event_created"], counts["event_duplicate"]) == (1, 1)
    incident = db.session.scalars(select(Incident)).one()
    assert (incident.level, incident.reporting_city.slug, incident.exercise) == (2, "linyi", False)
    assert _count(FlowRequest) == 1  # level II enters the same notification flow
    ingest.apply_batch(db.session, [_inbound(topic, _event("E-1", level="I", status="closed"))], root=ROOT)
    db.session.commit()
    db.session.refresh(incident)
    assert (incident.level, incident.status.value) == (1, "closed")
    assert _count(Incident) == 1


def test_linkage_event_with_future_time_is_dead_lettered_and_batch_continues(app, city, vehicle) -> None:
    fleet.register_linkage_system(db.session, ADMIN, city("linyi"), "fire119", "119", "临沂119")
    db.session.commit()
    future = _event("E-2").model_copy(update={"occurred_at": datetime.now(UTC) + timedelta(days=1)})
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    ingest.apply_batch(
        db.session,
        [
            _inbound(linkage_events_topic(ROOT, "linyi", "fire119"), future),
            _inbound(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(1, at)),
        ],
        root=ROOT,
    )
    db.session.commit()
    assert _count(Incident) == 0
    assert _count(VehiclePosition) == 1
    assert "future" in db.session.scalars(select(DeadLetter)).one().reason


def test_notified_city_linkage_systems_get_a_joint_alert(app, city, make_incident) -> None:
    fleet.register_linkage_system(db.session, ADMIN, city("xuzhou"), "police110", "110", "徐州110")
    db.session.commit()
    incident = make_incident("linyi", "II")
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None, mqtt_root=ROOT)
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None, mqtt_root=ROOT)
    db.session.commit()
    alert = db.session.scalars(select(MqttOutbox)).one()
    assert alert.topic == "hh/v1/xuzhou/linkage/police110/alerts"
    _, payload = decode_message(alert.topic, alert.payload)
    assert payload.incident_id == incident.public_id  # type: ignore[union-attr]


def test_position_history_is_pruned_after_the_retention(vehicle) -> None:
    now = datetime.now(UTC)
    topic = telemetry_topic(ROOT, "linyi", "v01")
    ingest.apply_batch(
        db.session,
        [
            _inbound(topic, _telemetry(1, now - timedelta(days=40))),
            _inbound(topic, _telemetry(2, now - timedelta(hours=1))),
        ],
        root=ROOT,
    )
    db.session.commit()
    assert ingest.prune_positions(db.session, timedelta(days=30)) == 1
    assert _count(VehiclePosition) == 1


def test_history_older_than_the_thinning_age_keeps_the_first_point_of_each_minute(app, city, vehicle) -> None:
    second, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v02", "临沂2号指挥车")
    db.session.commit()
    now = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
    old = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # three days and two hours before `now`
    recent = now - timedelta(days=1)
    batch = []
    for code in ("v01", "v02"):
        topic = telemetry_topic(ROOT, "linyi", code)
        # Two minutes at 1 Hz past the age, and one minute at 1 Hz inside it.
        for second_offset in range(120):
            at = old + timedelta(seconds=second_offset)
            report = _telemetry(second_offset, at).model_copy(update={"vehicle": code})
            batch.append(_inbound(topic, report))
        for second_offset in range(60):
            at = recent + timedelta(seconds=second_offset)
            report = _telemetry(1000 + second_offset, at).model_copy(update={"vehicle": code})
            batch.append(_inbound(topic, report))
    ingest.apply_batch(db.session, batch, root=ROOT)
    db.session.commit()
    assert _count(VehiclePosition) == 360

    # In batches, as the bridge calls it, until nothing is left to thin.
    removed = [ingest.thin_positions(db.session, now, timedelta(days=3), limit=100)]
    while removed[-1] == 100:
        removed.append(ingest.thin_positions(db.session, now, timedelta(days=3), limit=100))
    db.session.commit()

    assert sum(removed) == 2 * 118
    before_the_age = VehiclePosition.at < now - timedelta(days=2)
    kept = db.session.execute(
        select(VehiclePosition.vehicle_id, VehiclePosition.at).where(before_the_age)
    ).all()
    assert sorted((vehicle_id, at) for vehicle_id, at in kept) == sorted(
        (vehicle_id, old + timedelta(minutes=minute))
        for vehicle_id in (vehicle.id, second.id)
        for minute in (0, 1)
    )
    assert _count(VehiclePosition) == 2 * 2 + 2 * 60
    # A second pass finds nothing more to do.
    assert ingest.thin_positions(db.session, now, timedelta(days=3)) == 0


FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def _vehicle_row(vehicle):
    db.session.expire_all()
    return db.session.get(type(vehicle), vehicle.id)


def test_reports_dated_2099_are_dead_letters_and_never_the_live_state(vehicle) -> None:
    now = datetime.now(UTC)
    counts = ingest.apply_batch(
        db.session,
        [
            _inbound(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(1, FUTURE, lat=34.0)),
            _inbound(
                status_topic(ROOT, "linyi", "v01"), VehicleStatus(state=VehicleState.ON_SCENE, at=FUTURE)
            ),
        ],
        root=ROOT,
    )
    db.session.commit()
    assert counts["dead_letter"] == 2
    reasons = db.session.scalars(select(DeadLetter.reason)).all()
    assert len(reasons) == 2 and all("2099-01-01" in r and "ahead of the hub's clock" in r for r in reasons)
    row = _vehicle_row(vehicle)
    assert (row.position_at, row.status_at, row.status) == (None, None, None)
    assert _count(VehiclePosition) == 0

    # Within the allowed skew a report is taken as it is.
    soon = now + timedelta(minutes=2)
    ingest.apply_batch(
        db.session, [_inbound(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(2, soon))], root=ROOT
    )
    db.session.commit()
    assert _vehicle_row(vehicle).position_at == soon


def test_a_live_state_stuck_in_the_future_is_replaced_by_real_reports(vehicle) -> None:
    # As an earlier version left it: the latest position and status dated 2099.
    vehicle.latitude, vehicle.longitude, vehicle.position_at = 34.0, 117.0, FUTURE
    vehicle.status, vehicle.status_at = "on_scene", FUTURE
    db.session.commit()
    now = datetime.now(UTC).replace(microsecond=0)
    ingest.apply_batch(
        db.session,
        [
            _inbound(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(1, now, lat=35.5)),
            _inbound(status_topic(ROOT, "linyi", "v01"), VehicleStatus(state=VehicleState.EN_ROUTE, at=now)),
        ],
        root=ROOT,
    )
    db.session.commit()
    row = _vehicle_row(vehicle)
    assert (row.latitude, row.position_at) == (35.5, now)
    assert (row.status, row.status_at) == ("en_route", now)
