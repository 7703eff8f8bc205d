"""Joint drills: plan, approve, start once, play each inject through the live pipes as exercise,
record responses, end, and draft the after-action report's figures.

The rules of play are in `hub.drills.rules` (pure); this module loads the inject rows as slots,
applies a rule, and writes the answer back. Every function takes the session, checks, changes,
flushes and audits; none commits. Other capabilities are reached through their services only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import object_session

from contracts.bulletins import BulletinCreate
from contracts.common import IncidentCategory, IncidentLevel, WarningColour
from contracts.drills import (
    DrillContext,
    DrillPlan,
    ExpectedAction,
    Inject,
    InjectChannel,
    Msel,
    ObservationCreate,
    PlayerInject,
    TaskRating,
    exercise_title,
)
from contracts.errors import ContractError
from contracts.incidents import IncidentCreate
from contracts.mqtt import DEFAULT_ROOT, JointAlert, NoticeAction
from contracts.msel import decode_msel_csv, decode_msel_json, encode_msel_csv, encode_msel_json
from hub.bulletins import services as bulletins
from hub.drills import rules
from hub.drills.models import Drill, DrillInject, DrillObservation, DrillResponse, DrillStatus
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, affected_rows, utcnow

if TYPE_CHECKING:
    from hub.config import Settings

STARTEX = "drill-startex"
INJECT = "drill-inject"
FLAG = "drill-flag"
ENDEX = "drill-endex"
AAR = "drill-aar"
# The longest a drill's command to a vehicle stays valid; ENDEX expires what is left before that.
COMMAND_TTL = commands.MAX_TTL
TITLE_LENGTH = 60
# Channels the hub cannot play through yet reach the target's duty desk instead (see `deliver`).
DESK_CHANNELS = (
    InjectChannel.DESK_NOTICE,
    InjectChannel.PARTNER_PLATFORM,
    InjectChannel.CAP,
    InjectChannel.AID_REQUEST,
    InjectChannel.CONSULTATION_CALL,
)


# Who may do what -------------------------------------------------------------------------------


def is_controller(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor controls the drill: a coordinator of its controlling city."""
    return actor.role is Role.COORDINATOR and actor.city_id == drill.controlling_city_id


def _require_controller(actor: Actor, drill: Drill) -> None:
    if not is_controller(actor, drill):
        raise Forbidden("only the controlling city's coordinators control a drill")


def is_evaluator(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor is one of the drill's evaluators (by user name and city)."""
    if actor.kind != "user" or actor.city_id is None:
        return False
    session = object_session(drill)
    city = session.get(City, actor.city_id) if session is not None else None
    return city is not None and any(
        e.name == actor.name and e.city == city.slug for e in plan_of(drill).evaluators
    )


def sees_expectations(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor may see expected actions and evaluator notes (players: after ENDEX)."""
    return drill.status == DrillStatus.ENDED or is_controller(actor, drill) or is_evaluator(actor, drill)


def _drill_actor(drill: Drill) -> Actor:
    # The exercise control cell speaks for the controlling city on the live channels.
    return Actor("system", f"drill:{drill.id}", drill.controlling_city_id, Role.COORDINATOR)


# Reading ---------------------------------------------------------------------------------------


def get(session: DbSession, drill_id: int) -> Drill:
    """Return a drill by id, or fail."""
    drill = session.get(Drill, drill_id)
    if drill is None:
        raise NotFound(f"no drill {drill_id}")
    return drill


def get_by_public_id(session: DbSession, public_id: uuid.UUID) -> Drill:
    """Return a drill by its public id, or fail."""
    drill = session.scalar(select(Drill).where(Drill.public_id == public_id))
    if drill is None:
        raise NotFound(f"no drill {public_id}")
    return drill


def list_drills(session: DbSession, limit: int = 200) -> list[Drill]:
    """Return drills, the latest STARTEX first."""
    return list(session.scalars(select(Drill).order_by(Drill.startex.desc(), Drill.id.desc()).limit(limit)))


def plan_of(drill: Drill) -> DrillPlan:
    """Return the drill's plan as validated when it was created."""
    return DrillPlan.model_validate(drill.plan)


def context_of(session: DbSession, drill: Drill) -> DrillContext:
    """Return what an MSEL of the drill is checked against: its plan and the member cities."""
    members = cities.all_cities(session)
    aliases = {c.name_zh: c.slug for c in members} | {c.name_zh.removesuffix("市"): c.slug for c in members}
    return DrillContext.of_plan(plan_of(drill), member_cities=[c.slug for c in members], city_aliases=aliases)


def to_inject(row: DrillInject) -> Inject:
    """Return an inject row as its contract."""
    return Inject(
        number=row.number,
        offset_s=row.offset_s,
        city=row.city.slug,
        role=row.role,
        vehicle=row.vehicle,
        linkage_system=row.linkage_system,
        channel=InjectChannel(row.channel),
        message=row.message,
        expected_action=ExpectedAction(row.expected_action) if row.expected_action else None,
        expected_within_s=row.expected_within_s,
        objective=row.objective,
        critical_task=row.critical_task,
        contingency_of=row.contingency_of,
        controller=row.controller,
        evaluator_notes=row.evaluator_notes,
    )


def for_players(row: DrillInject) -> PlayerInject:
    """Return what a player may see of an inject before ENDEX."""
    return to_inject(row).for_players()


def msel_of(drill: Drill) -> Msel:
    """Return the drill's MSEL as its contract, in play order."""
    return Msel(injects=tuple(to_inject(row) for row in drill.injects))


def export_msel(drill: Drill, fmt: Literal["csv", "json"] = "csv") -> bytes:
    """Return the drill's MSEL as CSV (Chinese headers, as planners' spreadsheets have) or JSON."""
    msel = msel_of(drill)
    return encode_msel_csv(msel, headers="zh") if fmt == "csv" else encode_msel_json(msel)


def clock_of(drill: Drill) -> rules.DrillClock:
    """Return the drill's clock (only once started)."""
    if drill.started_at is None:
        raise Conflict("the drill has not started", reason="drill_not_started")
    return rules.DrillClock(
        started_at=drill.started_at,
        duration=drill.endex - drill.startex,
        scale=drill.time_scale,
        paused_at=drill.paused_at,
        paused_total=timedelta(seconds=drill.paused_total_s),
    )


def _slot(row: DrillInject) -> rules.Slot:
    return rules.Slot(
        number=row.number,
        offset_s=row.offset_s,
        state=rules.SlotState(row.state),
        due_at=row.due_at,
        contingency_of=row.contingency_of,
        delivered_at=row.delivered_at,
        manual=row.manual,
        skip_reason=row.skip_reason,
    )


def _write_slots(drill: Drill, slots: Sequence[rules.Slot]) -> list[int]:
    """Write the slots back onto the rows; return the numbers of the rows that changed."""
    rows = {row.number: row for row in drill.injects}
    changed = []
    for slot in slots:
        row = rows[slot.number]
        if _slot(row) == slot:
            continue
        changed.append(slot.number)
        row.state = slot.state.value
        row.due_at = slot.due_at
        row.delivered_at = slot.delivered_at
        row.manual = slot.manual
        row.skip_reason = slot.skip_reason
    return changed


def _apply(drill: Drill, change: Callable[[tuple[rules.Slot, ...]], tuple[rules.Slot, ...]]) -> list[int]:
    try:
        slots = change(tuple(_slot(row) for row in drill.injects))
    except rules.DrillRuleError as error:
        raise Conflict(str(error)) from error
    return _write_slots(drill, slots)


def _snapshot(drill: Drill) -> dict[str, object]:
    return {
        "name": drill.name,
        "status": drill.status,
        "startex": drill.startex.isoformat(),
        "endex": drill.endex.isoformat(),
        "time_scale": drill.time_scale,
        "injects": len(drill.injects),
    }


# Planning --------------------------------------------------------------------------------------


def create(session: DbSession, actor: Actor, plan: DrillPlan, *, time_scale: float = 1.0) -> Drill:
    """Create a drill in draft from a plan; only the controlling city's coordinators plan it."""
    controlling = cities.by_slug(session, plan.controlling_city)
    if actor.role is not Role.COORDINATOR or actor.city_id != controlling.id:
        raise Forbidden("only the controlling city's coordinators plan a drill")
    try:
        rules.wall_time(0, time_scale)
        checked = DrillPlan.model_validate(
            plan.model_dump(),
            context=DrillContext(member_cities=frozenset(c.slug for c in cities.all_cities(session))),
        )
    except ValueError as error:
        raise InvalidInput(str(error)) from error
    drill = Drill(
        public_id=uuid.uuid4(),
        name=checked.name,
        drill_type=checked.drill_type.value,
        scope=checked.scope.value,
        controlling_city=controlling,
        plan=checked.model_dump(mode="json"),
        status=DrillStatus.DRAFT,
        time_scale=float(time_scale),
        startex=checked.startex,
        endex=checked.endex,
        paused_total_s=0.0,
        created_by_id=actor.user_id,
        created_at=utcnow(),
    )
    session.add(drill)
    session.flush()
    audit.record(session, actor, "drill.created", "drill", drill.id, after=_snapshot(drill))
    return drill


def import_msel(
    session: DbSession, actor: Actor, drill_id: int, raw: bytes | str, fmt: Literal["csv", "json"] = "csv"
) -> Drill:
    """Replace a draft drill's MSEL with one read from CSV or JSON; the file is taken whole or not.

    Raises `ContractError` (its problems name row and column) when the file does not fit the drill.
    """
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if drill.status != DrillStatus.DRAFT:
        raise Conflict("the MSEL of an approved drill no longer changes; add a contingency instead")
    decode = decode_msel_csv if fmt == "csv" else decode_msel_json
    msel = decode(raw, context_of(session, drill))
    before = len(drill.injects)
    for row in list(drill.injects):
        session.delete(row)
    session.flush()
    session.expire(drill, ["injects"])
    by_slug = {c.slug: c for c in cities.all_cities(session)}
    for inject in msel.ordered():
        session.add(_row(drill, inject, by_slug[inject.city]))
    session.flush()
    session.expire(drill, ["injects"])
    audit.record(
        session,
        actor,
        "drill.msel_imported",
        "drill",
        drill.id,
        before={"injects": before},
        after={"injects": len(msel.injects), "format": fmt},
    )
    return drill


def _row(drill: Drill, inject: Inject, city: City) -> DrillInject:
    held = inject.contingency_of is not None
    return DrillInject(
        drill=drill,
        number=inject.number,
        offset_s=inject.offset_s,
        city=city,
        role=inject.role,
        vehicle=inject.vehicle,
        linkage_system=inject.linkage_system,
        channel=inject.channel.value,
        message=inject.message,
        expected_action=inject.expected_action.value if inject.expected_action else None,
        expected_within_s=inject.expected_within_s,
        objective=inject.objective,
        critical_task=inject.critical_task,
        contingency_of=inject.contingency_of,
        controller=inject.controller,
        evaluator_notes=inject.evaluator_notes,
        state=(rules.SlotState.HELD if held else rules.SlotState.PENDING).value,
        manual=False,
    )


def approve(session: DbSession, actor: Actor, drill_id: int) -> Drill:
    """Approve a draft drill with its MSEL; the scheduler starts it at STARTEX."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if drill.status != DrillStatus.DRAFT:
        raise Conflict(f"the drill is {drill.status}, not a draft")
    if not drill.injects:
        raise InvalidInput("a drill without injects cannot be approved", reason="drill_without_injects")
    drill.status = DrillStatus.APPROVED
    drill.approved_at = utcnow()
    session.flush()
    audit.record(session, actor, "drill.approved", "drill", drill.id, after=_snapshot(drill))
    return drill


# Play ------------------------------------------------------------------------------------------


def start(session: DbSession, drill_id: int, now: datetime | None = None) -> bool:
    """Start an approved drill: its timetable from now. Return False if it was already started.

    The status moves by a conditional UPDATE, so of two processes (or a duplicated trigger) one
    starts the drill and the other finds nothing to do.
    """
    now = now or utcnow()
    started = affected_rows(
        session.execute(
            update(Drill)
            .where(Drill.id == drill_id, Drill.status == DrillStatus.APPROVED)
            .values(status=DrillStatus.RUNNING, started_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if started != 1:
        return False
    drill = get(session, drill_id)
    session.refresh(drill)
    slots = rules.timetable((to_inject(row) for row in drill.injects), now, drill.time_scale)
    _write_slots(drill, slots)
    session.flush()
    audit.record(session, Actor.system("drills"), "drill.startex", "drill", drill.id, after=_snapshot(drill))
    return True


def start_now(session: DbSession, actor: Actor, drill_id: int) -> Drill:
    """Start an approved drill now, by a controller's hand (before its planned STARTEX)."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if not start(session, drill_id):
        raise Conflict(f"the drill is {drill.status}; only an approved drill starts")
    session.refresh(drill)
    return drill


def _in_play(drill: Drill) -> None:
    if drill.status not in DrillStatus.IN_PLAY:
        raise Conflict(f"the drill is {drill.status}, not in play")


def pause(session: DbSession, actor: Actor, drill_id: int, now: datetime | None = None) -> Drill:
    """Stop the drill's timer; nothing goes out until it resumes."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    _in_play(drill)
    now = now or utcnow()
    try:
        clock = rules.pause(clock_of(drill), now)
    except rules.DrillRuleError as error:
        raise Conflict(str(error)) from error
    drill.paused_at = clock.paused_at
    drill.status = DrillStatus.PAUSED
    session.flush()
    audit.record(session, actor, "drill.paused", "drill", drill.id, after={"paused_at": now.isoformat()})
    return drill


def resume(session: DbSession, actor: Actor, drill_id: int, now: datetime | None = None) -> Drill:
    """Restart the timer; every pending inject moves by the length of the pause."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    _in_play(drill)
    now = now or utcnow()
    try:
        clock, slots = rules.resume(clock_of(drill), [_slot(row) for row in drill.injects], now)
    except rules.DrillRuleError as error:
        raise Conflict(str(error)) from error
    _write_slots(drill, slots)
    drill.paused_at = None
    drill.paused_total_s = clock.paused_total.total_seconds()
    drill.status = DrillStatus.RUNNING
    session.flush()
    audit.record(
        session, actor, "drill.resumed", "drill", drill.id, after={"paused_total_s": drill.paused_total_s}
    )
    return drill


def skip(session: DbSession, actor: Actor, drill_id: int, number: int, reason: str) -> Drill:
    """Skip an inject with a reason; it stays in the record."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if drill.status == DrillStatus.ENDED:
        raise Conflict("the drill has ended", reason="drill_ended")
    _apply(drill, lambda slots: rules.skip(slots, number, reason))
    session.flush()
    audit.record(
        session, actor, "drill.inject_skipped", "drill", drill.id, after={"number": number, "reason": reason}
    )
    return drill


def send_now(
    session: DbSession, actor: Actor, drill_id: int, number: int, now: datetime | None = None
) -> Drill:
    """Make an inject (pending, or a held contingency) due now; the next tick delivers it."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    _in_play(drill)
    at = now or utcnow()
    _apply(drill, lambda slots: rules.send_now(slots, number, at))
    session.flush()
    flow_requests.enqueue(
        session,
        INJECT,
        key=rules.inject_key(drill.id, number),
        parameters={"drill_id": drill.id, "number": number},
    )
    audit.record(session, actor, "drill.inject_sent", "drill", drill.id, after={"number": number})
    return drill


def add_contingency(
    session: DbSession, actor: Actor, drill_id: int, data: dict[str, object], *, release_now: bool = False
) -> DrillInject:
    """Add a contingency inject during play (held, or due now); checked against the drill."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if drill.status == DrillStatus.ENDED:
        raise Conflict("the drill has ended", reason="drill_ended")
    try:
        inject = Inject.model_validate(data, context=context_of(session, drill))
    except ValidationError as error:
        raise InvalidInput(str(error)) from error
    release_at = utcnow() if release_now and drill.status in DrillStatus.IN_PLAY else None
    try:
        slots = rules.add_contingency([_slot(row) for row in drill.injects], inject, release_at=release_at)
    except rules.DrillRuleError as error:
        raise Conflict(str(error)) from error
    row = _row(drill, inject, cities.by_slug(session, inject.city))
    new = next(s for s in slots if s.number == inject.number)
    row.state, row.due_at, row.manual = new.state.value, new.due_at, new.manual
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "drill.contingency_added", "drill", drill.id, after=inject.model_dump(mode="json")
    )
    return row


@dataclass(frozen=True)
class Delivery:
    """What delivering one inject did."""

    outcome: Literal["delivered", "already", "not_due", "not_in_play"]
    ref: str | None = None


def deliver(
    session: DbSession,
    drill_id: int,
    number: int,
    *,
    mqtt_root: str = DEFAULT_ROOT,
    now: datetime | None = None,
) -> Delivery:
    """Deliver one inject through its live channel, marked as exercise; at most once.

    The row moves from pending to delivered by a conditional UPDATE in the same transaction as
    what the channel writes (the incident, the bulletin and its deliveries, the command in the MQTT
    outbox), so a repeated or concurrent request for the same inject delivers nothing twice.
    Channels the hub does not yet play through (partner platform, CAP, aid request, consultation
    call), and a bulletin or warning to the controlling city itself (a bulletin goes to other
    cities only), reach the target's duty desk as an exercise notice.
    """
    drill = get(session, drill_id)
    row = session.scalar(
        select(DrillInject).where(DrillInject.drill_id == drill_id, DrillInject.number == number)
    )
    if row is None:
        raise NotFound(f"drill {drill_id} has no inject {number}")
    if row.state == rules.SlotState.DELIVERED:
        return Delivery("already", row.delivery_ref)
    if drill.status != DrillStatus.RUNNING:
        return Delivery("not_in_play")
    now = now or utcnow()
    if row.state != rules.SlotState.PENDING or row.due_at is None or row.due_at > now:
        return Delivery("not_due")
    claimed = affected_rows(
        session.execute(
            update(DrillInject)
            .where(DrillInject.id == row.id, DrillInject.state == rules.SlotState.PENDING.value)
            .values(state=rules.SlotState.DELIVERED.value, delivered_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if claimed != 1:
        return Delivery("already")
    session.refresh(row)
    ref = _play(session, drill, row, mqtt_root=mqtt_root, now=now)
    row.delivery_ref = ref
    session.flush()
    audit.record(
        session,
        Actor.system("drills"),
        "drill.inject_delivered",
        "drill",
        drill.id,
        after={"number": number, "channel": row.channel, "ref": ref, "due_at": row.due_at.isoformat()},
        city_id=row.city_id,
    )
    return Delivery("delivered", ref)


def _title(drill: Drill, row: DrillInject) -> str:
    first = row.message.splitlines()[0].strip() if row.message.strip() else drill.name
    short = first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"
    return exercise_title(f"{short}（{drill.name}）"[:190])


def _play(session: DbSession, drill: Drill, row: DrillInject, *, mqtt_root: str, now: datetime) -> str:
    channel = InjectChannel(row.channel)
    actor = _drill_actor(drill)
    title = _title(drill, row)
    if channel is InjectChannel.INCIDENT:
        incident = incidents.create_incident(
            session,
            actor,
            IncidentCreate(
                category=IncidentCategory.NATURAL,
                level=IncidentLevel.IV,
                title=title,
                description=row.message,
                occurred_at=now.replace(microsecond=0),
                affected_cities=(row.city.slug,),
                exercise=True,
            ),
        )
        return f"incident:{incident.public_id}"
    if (
        channel in (InjectChannel.BULLETIN, InjectChannel.WARNING)
        and row.city_id != drill.controlling_city_id
    ):
        warning = channel is InjectChannel.WARNING
        bulletin = bulletins.issue(
            session,
            actor,
            BulletinCreate(
                kind="warning" if warning else "bulletin",
                colour=WarningColour.BLUE if warning else None,
                category=IncidentCategory.NATURAL,
                area=row.city.name_zh,
                title=title,
                text=row.message,
                addressed_cities=(row.city.slug,),
                scope="restricted",
                receipt_deadline=now
                + rules.wall_time(row.expected_within_s or 3600, drill.time_scale)
                + timedelta(seconds=60),
                exercise=True,
            ),
            mqtt_root=mqtt_root,
        )
        return f"bulletin:{bulletin.public_id}"
    if channel is InjectChannel.MQTT_VEHICLE:
        vehicle = fleet.vehicle_by_code(session, row.city.slug, row.vehicle or "")
        if vehicle is None:
            raise InvalidInput(f"{row.city.slug} has no vehicle {row.vehicle!r}")
        command = commands.send_command(
            session,
            Actor.system(f"drill:{drill.id}"),
            vehicle.id,
            NoticeAction(title=title, text=row.message[:500]),
            root=mqtt_root,
            ttl=COMMAND_TTL,
            exercise=True,
        )
        return f"command:{command.command_id}"
    if channel is InjectChannel.MQTT_LINKAGE:
        system = fleet.linkage_system_by_code(session, row.city.slug, row.linkage_system or "")
        if system is None:
            raise InvalidInput(f"{row.city.slug} has no linkage system {row.linkage_system!r}")
        alert = JointAlert(
            id=uuid.uuid5(drill.public_id, f"inject-{row.number}"),
            incident_id=uuid.uuid5(drill.public_id, f"scenario-{row.number}"),
            level=IncidentLevel.IV,
            title=title,
            reporting_city=drill.controlling_city.slug,
            exercise=True,
            issued_at=now,
        )
        fleet.queue_joint_alert(session, system, alert, root=mqtt_root)
        return f"alert:{alert.id}"
    # The desk: the drill's own lane on the target's desk (see hub.drills.desk).
    return "desk"


# Responses -------------------------------------------------------------------------------------


def record_response(
    session: DbSession,
    actor: Actor,
    drill_id: int,
    kind: ExpectedAction,
    *,
    number: int | None = None,
    at: datetime | None = None,
    ref: str | None = None,
) -> DrillResponse:
    """Record something the actor's city did inside the drill (a notice read, a report filed, …)."""
    drill = get(session, drill_id)
    if actor.city_id is None:
        raise Forbidden("only a person or platform of a member city responds in a drill")
    if drill.status not in DrillStatus.IN_PLAY:
        raise Conflict("responses count only while the drill is in play")
    inject_id = None
    if number is not None:
        row = session.scalar(
            select(DrillInject).where(DrillInject.drill_id == drill_id, DrillInject.number == number)
        )
        if row is None:
            raise NotFound(f"drill {drill_id} has no inject {number}")
        if row.city_id != actor.city_id:
            raise Forbidden("you respond to your own city's injects only")
        if row.delivered_at is None:
            raise Conflict(f"inject {number} has not been delivered")
        inject_id = row.id
    response = DrillResponse(
        drill_id=drill.id,
        inject_id=inject_id,
        city_id=actor.city_id,
        kind=kind.value,
        ref=ref,
        at=at or utcnow(),
        recorded_by=actor.name[:64],
    )
    session.add(response)
    session.flush()
    audit.record(
        session,
        actor,
        "drill.response",
        "drill",
        drill.id,
        after={"number": number, "kind": kind.value},
    )
    return response


def unread_notices(session: DbSession, city_id: int) -> list[DrillInject]:
    """Return delivered desk injects of drills in play that the city has not yet marked read."""
    read = select(DrillResponse.inject_id).where(
        DrillResponse.inject_id.is_not(None), DrillResponse.kind == ExpectedAction.NOTICE_READ.value
    )
    query = (
        select(DrillInject)
        .join(Drill, Drill.id == DrillInject.drill_id)
        .where(
            DrillInject.city_id == city_id,
            DrillInject.state == rules.SlotState.DELIVERED.value,
            DrillInject.delivery_ref == "desk",
            Drill.status.in_(DrillStatus.IN_PLAY),
            DrillInject.id.not_in(read),
        )
        .order_by(DrillInject.delivered_at)
    )
    return list(session.scalars(query))


def _channel_actions(session: DbSession, drill: Drill) -> list[rules.ActionRecord]:
    """Return the actions the live channels recorded on the drill's deliveries (acks, receipts)."""
    actions: list[rules.ActionRecord] = []
    by_command: dict[uuid.UUID, DrillInject] = {}
    for row in drill.injects:
        ref = row.delivery_ref or ""
        if ref.startswith("command:"):
            by_command[uuid.UUID(ref.removeprefix("command:"))] = row
        elif ref.startswith("bulletin:"):
            actor = _drill_actor(drill)
            bulletin = bulletins.get_for(session, actor, uuid.UUID(ref.removeprefix("bulletin:")))
            for recipient in bulletin.recipients:
                if recipient.city_id == row.city_id and recipient.receipt_at is not None:
                    actions.append(
                        rules.ActionRecord(
                            row.city.slug,
                            ExpectedAction.RECEIPT_SIGNED,
                            recipient.receipt_at,
                            row.number,
                            ref=ref,
                        )
                    )
    for command in commands.by_command_ids(session, list(by_command)):
        row = by_command[command.command_id]
        if command.state in ("received", "done"):
            actions.append(
                rules.ActionRecord(
                    row.city.slug,
                    ExpectedAction.COMMAND_ACKED,
                    command.acked_at or command.state_at,
                    row.number,
                    row.vehicle,
                )
            )
    return actions


def measures(
    session: DbSession, drill: Drill, now: datetime | None = None
) -> tuple[rules.ResponseMeasure, ...]:
    """Measure each delivered inject's response: seconds to the first qualifying action, flags."""
    numbers = {row.id: row.number for row in drill.injects}
    deliveries = [
        rules.DeliveryRecord(
            number=row.number,
            city=row.city.slug,
            delivered_at=row.delivered_at,
            expected_action=ExpectedAction(row.expected_action) if row.expected_action else None,
            expected_within_s=row.expected_within_s,
            device=row.vehicle or row.linkage_system,
        )
        for row in drill.injects
    ]
    stored = session.scalars(select(DrillResponse).where(DrillResponse.drill_id == drill.id)).all()
    actions = [
        rules.ActionRecord(
            r.city.slug,
            ExpectedAction(r.kind),
            r.at,
            numbers.get(r.inject_id) if r.inject_id is not None else None,
            r.device,
            r.ref,
        )
        for r in stored
    ]
    actions += _channel_actions(session, drill)
    end = drill.ended_at if drill.ended_at is not None else (now or utcnow())
    return rules.measure_responses(deliveries, actions, now=end, scale=drill.time_scale)


def flag_unanswered(session: DbSession, drill_id: int, now: datetime | None = None) -> list[int]:
    """Flag injects unanswered at their expected time and release their held contingencies.

    Return the numbers newly flagged; a second run flags nothing again.
    """
    drill = get(session, drill_id)
    if drill.status not in DrillStatus.IN_PLAY:
        return []
    now = now or utcnow()
    rows = {row.number: row for row in drill.injects}
    newly = [
        m.number for m in measures(session, drill, now) if m.flagged and rows[m.number].flagged_at is None
    ]
    for number in newly:
        rows[number].flagged_at = now
    if newly and drill.status == DrillStatus.RUNNING:
        slots = tuple(_slot(row) for row in drill.injects)
        for contingency in rules.contingencies_to_release(slots, newly):
            slots = rules.release_contingency(slots, contingency, now)
        _write_slots(drill, slots)
    session.flush()
    if newly:
        audit.record(
            session, Actor.system("drills"), "drill.flagged", "drill", drill.id, after={"numbers": newly}
        )
    return newly


def end(session: DbSession, drill_id: int, now: datetime | None = None) -> bool:
    """ENDEX: close the timetable (pending and held injects not played), expire the drill's
    undelivered exercise commands; once. Return False if the drill was not in play."""
    now = now or utcnow()
    ended = affected_rows(
        session.execute(
            update(Drill)
            .where(Drill.id == drill_id, Drill.status.in_(DrillStatus.IN_PLAY))
            .values(status=DrillStatus.ENDED, ended_at=now, paused_at=None)
            .execution_options(synchronize_session=False)
        )
    )
    if ended != 1:
        return False
    drill = get(session, drill_id)
    session.refresh(drill)
    _write_slots(drill, rules.close_at_endex([_slot(row) for row in drill.injects]))
    command_ids = [
        uuid.UUID(row.delivery_ref.removeprefix("command:"))
        for row in drill.injects
        if row.delivery_ref and row.delivery_ref.startswith("command:")
    ]
    # A drill's warning also sent notices to the crews of its cities; expire those too, unless a
    # city still plays in another drill.
    busy = {
        city
        for other in session.scalars(select(Drill).where(Drill.status.in_(DrillStatus.IN_PLAY)))
        for city in plan_of(other).participating_cities
    }
    city_ids = [
        c.id
        for c in cities.by_slugs(session, [s for s in plan_of(drill).participating_cities if s not in busy])
    ]
    expired = commands.expire_exercise(
        session,
        command_ids,
        vehicle_ids=fleet.vehicle_ids_in(session, city_ids),
        issued_since=drill.started_at,
    )
    session.flush()
    audit.record(
        session,
        Actor.system("drills"),
        "drill.endex",
        "drill",
        drill.id,
        after={**_snapshot(drill), "commands_expired": expired},
    )
    return True


def end_now(session: DbSession, actor: Actor, drill_id: int) -> Drill:
    """End a drill in play now, by a controller's hand."""
    drill = get(session, drill_id)
    _require_controller(actor, drill)
    if not end(session, drill_id):
        raise Conflict(f"the drill is {drill.status}, not in play")
    session.refresh(drill)
    return drill


# Evaluation ------------------------------------------------------------------------------------


def add_observation(
    session: DbSession, actor: Actor, drill_id: int, data: ObservationCreate
) -> DrillObservation:
    """Record an evaluator's observation (controllers may record too)."""
    drill = get(session, drill_id)
    if not (is_evaluator(actor, drill) or is_controller(actor, drill)):
        raise Forbidden("only the drill's evaluators and controllers record observations")
    plan = plan_of(drill)
    objectives = {o.ref: {t.ref for t in o.critical_tasks} for o in plan.objectives}
    if data.objective is not None and data.objective not in objectives:
        raise InvalidInput(f"the drill has no objective {data.objective!r}")
    if data.critical_task is not None and data.critical_task not in objectives.get(
        data.objective or "", set()
    ):
        raise InvalidInput(f"objective {data.objective!r} has no critical task {data.critical_task!r}")
    observation = DrillObservation(
        drill_id=drill.id,
        evaluator=actor.name[:64],
        evaluator_user_id=actor.user_id,
        objective=data.objective,
        critical_task=data.critical_task,
        rating=data.rating.value if data.rating else None,
        text=data.text,
        observed_at=data.observed_at,
        created_at=utcnow(),
    )
    session.add(observation)
    session.flush()
    audit.record(session, actor, "drill.observation", "drill", drill.id, after={"objective": data.objective})
    return observation


def observations(session: DbSession, drill_id: int) -> list[DrillObservation]:
    """Return the drill's observations by time."""
    query = select(DrillObservation).where(DrillObservation.drill_id == drill_id)
    return list(session.scalars(query.order_by(DrillObservation.observed_at, DrillObservation.id)))


def _stats(stats: rules.ResponseStats) -> dict[str, object]:
    return {
        "city": stats.city,
        "measured": stats.measured,
        "answered": stats.answered,
        "in_time": stats.in_time,
        "unanswered": stats.unanswered,
        "in_time_share": stats.in_time_share,
        "median_s": stats.median_s,
        "p90_s": stats.p90_s,
    }


def draft_aar(session: DbSession, drill_id: int, now: datetime | None = None) -> bool:
    """Compute the draft after-action report's figures of an ended drill, once."""
    drill = get(session, drill_id)
    if drill.status != DrillStatus.ENDED or drill.aar is not None:
        return False
    plan = plan_of(drill)
    records = [
        rules.ObservationRecord(
            evaluator=o.evaluator,
            text=o.text,
            at=o.observed_at,
            objective=o.objective,
            critical_task=o.critical_task,
            rating=TaskRating(o.rating) if o.rating else None,
        )
        for o in observations(session, drill_id)
    ]
    figures = rules.aar_statistics(
        measures(session, drill),
        records,
        cities=plan.participating_cities,
        objectives=[o.ref for o in plan.objectives],
    )
    drill.aar = {
        "overall": _stats(figures.overall),
        "per_city": [_stats(s) for s in figures.per_city],
        "flagged": [m.number for m in figures.flagged],
        "findings": [
            {
                "objective": f.objective,
                "observations": len(f.observations),
                "ratings": {rating.value: count for rating, count in f.ratings.items()},
            }
            for f in figures.findings
        ],
    }
    drill.aar_drafted_at = now or utcnow()
    session.flush()
    audit.record(session, Actor.system("drills"), "drill.aar_drafted", "drill", drill.id)
    return True


# Scheduling ------------------------------------------------------------------------------------


def _enqueue(session: DbSession, flow: str, key: str, drill_id: int, number: int | None = None) -> None:
    parameters: dict[str, object] = {"drill_id": drill_id}
    if number is not None:
        parameters["number"] = number
    flow_requests.enqueue(session, flow, key=key, parameters=parameters)


def schedule_steps(session: DbSession, now: datetime, settings: Settings | None = None) -> None:
    """Enqueue every drill step due at `now`: STARTEX, due injects, flags, ENDEX, the AAR draft.

    Each step's key names it (`drill:{id}:inject:{n}`, …), so any number of ticking processes
    enqueue it once; the inject table is the timer, and no flow waits between injects.
    """
    approved = select(Drill.id).where(Drill.status == DrillStatus.APPROVED, Drill.startex <= now)
    for drill_id in session.scalars(approved):
        _enqueue(session, STARTEX, rules.startex_key(drill_id), drill_id)
    for drill in session.scalars(select(Drill).where(Drill.status.in_(DrillStatus.IN_PLAY))):
        clock = clock_of(drill)
        for slot in rules.due_injects([_slot(row) for row in drill.injects], clock, now):
            _enqueue(session, INJECT, rules.inject_key(drill.id, slot.number), drill.id, slot.number)
        for measure in measures(session, drill, now):
            row = next(r for r in drill.injects if r.number == measure.number)
            if measure.flagged and row.flagged_at is None:
                _enqueue(session, FLAG, rules.flag_key(drill.id, measure.number), drill.id, measure.number)
        endex_due = clock.endex_due()
        if endex_due is not None and endex_due <= now:
            _enqueue(session, ENDEX, rules.endex_key(drill.id), drill.id)
    unreported = select(Drill.id).where(Drill.status == DrillStatus.ENDED, Drill.aar_drafted_at.is_(None))
    for drill_id in session.scalars(unreported):
        _enqueue(session, AAR, rules.aar_key(drill_id), drill_id)


def msel_error_lines(error: ContractError) -> list[str]:
    """Return a refused MSEL's problems as lines naming row and column."""
    return [str(problem) for problem in error.problems]
