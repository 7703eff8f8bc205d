"""Commands to vehicles: sent through the outbox, tracked by their acks until done or expired."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from contracts.mqtt import Ack, AckStage, Action, Command, CommandKind, command_topic, encode
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, Vehicle, VehicleCommand
from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput, NotFound
from hub.kernel.models import MqttOutbox
from hub.kernel.types import DbSession, affected_rows, utcnow

DEFAULT_TTL = timedelta(minutes=10)
MAX_TTL = timedelta(hours=24)
MIN_TTL = timedelta(seconds=10)
# A goto is done when the vehicle arrives, which can be hours after it was received (a drive
# across the region); its TTL bounds only its delivery. Past this, nobody expects it any more.
GOTO_ARRIVAL_LIMIT = timedelta(hours=12)


def _enqueue(session: DbSession, command: VehicleCommand, root: str) -> None:
    message = Command.model_validate(
        {
            "id": command.command_id,
            "action": command.arguments,
            "issued_at": command.issued_at,
            "expires_at": command.expires_at,
        }
    )
    session.add(
        MqttOutbox(
            topic=command_topic(
                root, command.vehicle.city.slug, command.vehicle.code, exercise=command.exercise
            ),
            payload=encode(message),
            qos=1,
            command_id=command.command_id,
            attempts=0,
        )
    )


def send_command(
    session: DbSession,
    actor: Actor,
    vehicle_id: int,
    action: Action,
    *,
    root: str,
    ttl: timedelta = DEFAULT_TTL,
    exercise: bool = False,
    incident_id: int | None = None,
) -> VehicleCommand:
    """Record a command for a vehicle of the actor's own city and queue it for publishing.

    An exercise command goes under the exercise root, never the live one, and its acks count for
    the drill that sent it.
    """
    vehicle = fleet.vehicle(session, vehicle_id)
    own_city = actor.can_write_incidents and actor.city_id == vehicle.city_id
    if not own_city and actor.kind != "system":
        raise Forbidden("you may command your own city's vehicles only")
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidInput("a command must stay valid between 10 seconds and 24 hours")
    now = utcnow()
    command = VehicleCommand(
        command_id=uuid.uuid4(),
        vehicle=vehicle,
        kind=action.kind.value,
        arguments=action.model_dump(mode="json"),
        issued_by_id=actor.user_id,
        issued_at=now,
        expires_at=now + ttl,
        state=CommandState.PENDING,
        state_at=now,
        publish_count=0,
        exercise=exercise,
        incident_id=incident_id,
    )
    session.add(command)
    session.flush()
    _enqueue(session, command, root)
    audit.record(
        session,
        actor,
        "command.sent",
        "vehicle_command",
        command.id,
        after={
            "vehicle": vehicle.code,
            "command_id": str(command.command_id),
            "exercise": exercise,
            **command.arguments,
        },
    )
    return command


def resend_pending(session: DbSession, vehicle: Vehicle, *, root: str) -> int:
    """Queue again every unexpired command the vehicle has not acknowledged (it reconnected)."""
    now = utcnow()
    pending = session.scalars(
        select(VehicleCommand).where(
            VehicleCommand.vehicle_id == vehicle.id,
            VehicleCommand.state == CommandState.PENDING,
            VehicleCommand.expires_at > now,
        )
    ).all()
    for command in pending:
        _enqueue(session, command, root)
    return len(pending)


_NEXT_STATE = {
    AckStage.RECEIVED: CommandState.RECEIVED,
    AckStage.DONE: CommandState.DONE,
    AckStage.REJECTED: CommandState.REJECTED,
}


def apply_ack(session: DbSession, vehicle: Vehicle, ack: Ack, *, exercise: bool = False) -> str:
    """Move a command on by a vehicle's ack; return what happened (for counts and logs).

    Duplicates and acks that arrive out of order (received after done) change nothing. An ack
    counts only under the root its command went out on (`exercise`): live and drill never mix.
    """
    command = session.scalar(select(VehicleCommand).where(VehicleCommand.command_id == ack.command_id))
    if command is None:
        return "unknown"
    if command.vehicle_id != vehicle.id:
        return "foreign"
    if command.exercise != exercise:
        return "other_root"
    target = _NEXT_STATE[ack.stage]
    if command.state in CommandState.FINAL or command.state == target:
        return "duplicate"
    if command.state == CommandState.RECEIVED and target == CommandState.RECEIVED:
        return "duplicate"
    command.state = target
    command.state_at = ack.at
    command.reason = ack.reason
    if command.acked_at is None:
        command.acked_at = ack.at
    return "applied"


def expire(session: DbSession) -> int:
    """Close commands whose time ran out: never received → expired, received → timed out.

    A received goto times out only `GOTO_ARRIVAL_LIMIT` after it was received: the vehicle acks
    it done on arrival, and driving there may outlast the command's TTL.
    """
    now = utcnow()
    expired = affected_rows(
        session.execute(
            update(VehicleCommand)
            .where(VehicleCommand.state == CommandState.PENDING, VehicleCommand.expires_at <= now)
            .values(state=CommandState.EXPIRED, state_at=now)
        )
    )
    timed_out = affected_rows(
        session.execute(
            update(VehicleCommand)
            .where(
                VehicleCommand.state == CommandState.RECEIVED,
                VehicleCommand.expires_at <= now,
                (VehicleCommand.kind != CommandKind.GOTO.value)
                | (VehicleCommand.state_at <= now - GOTO_ARRIVAL_LIMIT),
            )
            .values(state=CommandState.TIMED_OUT, state_at=now)
        )
    )
    return (expired or 0) + (timed_out or 0)


def expire_exercise(
    session: DbSession,
    command_ids: list[uuid.UUID],
    *,
    vehicle_ids: list[int] | None = None,
    issued_since: datetime | None = None,
) -> int:
    """Expire exercise commands not done yet (their drill ended); live commands never.

    The commands are those named, and with `vehicle_ids` and `issued_since` also every exercise
    command to those vehicles since then (the notices a drill's warning sent to the crews).
    """
    chosen: ColumnElement[bool] = VehicleCommand.command_id.in_(command_ids)
    if vehicle_ids and issued_since is not None:
        chosen = or_(
            chosen, and_(VehicleCommand.vehicle_id.in_(vehicle_ids), VehicleCommand.issued_at >= issued_since)
        )
    now = utcnow()
    result = session.execute(
        update(VehicleCommand)
        .where(
            chosen,
            VehicleCommand.exercise.is_(True),
            VehicleCommand.state.in_((CommandState.PENDING, CommandState.RECEIVED)),
        )
        .values(state=CommandState.EXPIRED, state_at=now, expires_at=now)
    )
    return affected_rows(result)


def by_command_ids(session: DbSession, command_ids: list[uuid.UUID]) -> list[VehicleCommand]:
    """Return the commands with these ids (a drill reads its commands' acks)."""
    if not command_ids:
        return []
    return list(session.scalars(select(VehicleCommand).where(VehicleCommand.command_id.in_(command_ids))))


def for_incident(session: DbSession, incident_id: int) -> list[VehicleCommand]:
    """Return the commands sent for an incident, oldest first."""
    query = select(VehicleCommand).where(VehicleCommand.incident_id == incident_id)
    return list(session.scalars(query.order_by(VehicleCommand.issued_at, VehicleCommand.id)))


def for_vehicle(session: DbSession, vehicle_id: int, limit: int = 20) -> list[VehicleCommand]:
    """Return a vehicle's latest commands, newest first."""
    query = select(VehicleCommand).where(VehicleCommand.vehicle_id == vehicle_id)
    return list(session.scalars(query.order_by(VehicleCommand.id.desc()).limit(limit)))


def by_vehicle_and_id(session: DbSession, vehicle_id: int, command_id: uuid.UUID) -> VehicleCommand:
    """Return one command of a vehicle by its id, or fail."""
    found = session.scalar(
        select(VehicleCommand).where(
            VehicleCommand.vehicle_id == vehicle_id, VehicleCommand.command_id == command_id
        )
    )
    if found is None:
        raise NotFound(f"vehicle {vehicle_id} has no command {command_id}")
    return found


def unpublished(session: DbSession, limit: int = 200) -> list[MqttOutbox]:
    """Return outbox messages waiting to be published, oldest first.

    A command that is no longer pending (acknowledged, expired) is not sent again.
    """
    now = utcnow()
    query = (
        select(MqttOutbox)
        .outerjoin(VehicleCommand, VehicleCommand.command_id == MqttOutbox.command_id)
        .where(
            MqttOutbox.published_at.is_(None),
            (MqttOutbox.command_id.is_(None))
            | ((VehicleCommand.state == CommandState.PENDING) & (VehicleCommand.expires_at > now)),
        )
        .order_by(MqttOutbox.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_published(session: DbSession, message_id: int) -> None:
    """Record that the broker acknowledged an outbox message."""
    message = session.get(MqttOutbox, message_id)
    if message is None or message.published_at is not None:
        return
    now = utcnow()
    message.published_at = now
    message.attempts += 1
    if message.command_id is not None:
        session.execute(
            update(VehicleCommand)
            .where(VehicleCommand.command_id == message.command_id)
            .values(published_at=now, publish_count=VehicleCommand.publish_count + 1)
        )


def mark_publish_failed(session: DbSession, message_id: int, error: str) -> None:
    """Count a failed publish attempt; the message stays queued."""
    message = session.get(MqttOutbox, message_id)
    if message is not None:
        message.attempts += 1
        message.last_error = error[:2000]
