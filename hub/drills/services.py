"""Joint drills: plan, approve, start once, play each inject through the live pipes as exercise,
record responses, end, and draft the after-action report's figures.

The rules of play are in `hub.drills.rules` (pure); this module loads the inject rows as slots,
applies a rule, and writes the answer back. Every function takes the session, checks, changes,
flushes and audits; none commits. Other capabilities are reached through their services only.
"""

from __future__ import annotations

import csv
import io
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
from contracts.consultations import ActionItemCreate
from contracts.drills import (
    EXERCISE_PREFIX,
    AarNarrative,
    CorrectiveActionCreate,
    DrillContext,
    DrillPlan,
    ExpectedAction,
    HotwashCreate,
    Inject,
    InjectChannel,
    Msel,
    ObjectiveAssessment,
    ObservationCreate,
    PlayerInject,
    StaffMember,
    TaskRating,
    exercise_title,
)
from contracts.errors import ContractError
from contracts.incidents import IncidentCreate
from contracts.mqtt import DEFAULT_ROOT, JointAlert, NoticeAction
from contracts.msel import decode_msel_csv, decode_msel_json, encode_msel_csv, encode_msel_json
from hub.action_items import services as action_items
from hub.action_items.models import ActionItem
from hub.bulletins import services as bulletins
from hub.consultations import calendar
from hub.consultations import services as consultations
from hub.drills import rules
from hub.drills.models import (
    Drill,
    DrillAarRevision,
    DrillCorrectiveAction,
    DrillHotwash,
    DrillInject,
    DrillObservation,
    DrillResponse,
    DrillStatus,
)
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, affected_rows, utcnow
from hub.mutual_aid import services as aid_requests

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
# Channels played as an exercise bulletin through the bulletin pipeline (the cities' platforms,
# CAP 1.2 with status Exercise and the drill named in <note>, receipts): see `_play`.
BULLETIN_CHANNELS = (
    InjectChannel.BULLETIN,
    InjectChannel.WARNING,
    InjectChannel.PARTNER_PLATFORM,
    InjectChannel.CAP,
)
# Channels that reach the target's duty desk (the drill's lane): the notice itself, and the
# prompts to ask for aid or call a consultation, whose answer the hub finds in those records.
DESK_CHANNELS = (
    InjectChannel.DESK_NOTICE,
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


def _is_one_of(actor: Actor, drill: Drill, staff: Sequence[StaffMember]) -> bool:
    """Return whether the actor is a person listed in `staff` (by user name and city)."""
    if actor.kind != "user" or actor.city_id is None:
        return False
    session = object_session(drill)
    city = session.get(City, actor.city_id) if session is not None else None
    return city is not None and any(e.name == actor.name and e.city == city.slug for e in staff)


def is_evaluator(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor is one of the drill's evaluators (by user name and city)."""
    return _is_one_of(actor, drill, plan_of(drill).evaluators)


def lead_evaluator(drill: Drill) -> StaffMember:
    """Return the drill's lead evaluator: the first evaluator its plan lists (HSEEP's lead
    evaluator, who finalises the after-action report), or its first controller when the plan
    lists no evaluator."""
    plan = plan_of(drill)
    return plan.evaluators[0] if plan.evaluators else plan.controllers[0]


def is_lead_evaluator(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor is the drill's lead evaluator."""
    return _is_one_of(actor, drill, (lead_evaluator(drill),))


def writes_aar(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor edits the report's narrative: its evaluators and the lead evaluator."""
    return is_evaluator(actor, drill) or is_lead_evaluator(actor, drill)


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
    A partner-platform, CAP, bulletin or warning inject becomes an exercise bulletin (restricted
    to the target, 【演练】 in its title, the drill named in its CAP <note>) that the bulletin
    pipeline delivers to the city's platform with the exercise flag. An aid-request or
    consultation-call inject reaches the target's desk as a prompt; what the city then does (an
    exercise aid request, an exercise consultation) is found in those records and measured. One
    to the controlling city itself (a bulletin goes to other cities only) reaches its desk too.
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
    if channel in BULLETIN_CHANNELS and row.city_id != drill.controlling_city_id:
        warning = channel in (InjectChannel.WARNING, InjectChannel.CAP)
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
                exercise_ref=str(drill.public_id),
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


def platform_deliveries(
    session: DbSession, drill: Drill, number: int | None = None
) -> dict[int, tuple[int, int, datetime | None]]:
    """Return, per inject played through a city's platform (or only inject `number`), its
    bulletin's id, the recipient's id and when the platform accepted it (None until it has)."""
    found: dict[int, tuple[int, int, datetime | None]] = {}
    for row in drill.injects:
        ref = row.delivery_ref or ""
        if row.channel != InjectChannel.PARTNER_PLATFORM.value or not ref.startswith("bulletin:"):
            continue
        if number is not None and row.number != number:
            continue
        bulletin = bulletins.get_for(session, _drill_actor(drill), uuid.UUID(ref.removeprefix("bulletin:")))
        for recipient in bulletin.recipients:
            if recipient.city_id == row.city_id:
                accepted = recipient.delivered_at
                if accepted is not None and recipient.receipt_at is not None:
                    # A platform that signs at once reports its own time of receipt, a moment
                    # before the hub has read its answer: that is when the city had it.
                    accepted = min(accepted, recipient.receipt_at)
                found[row.number] = (bulletin.id, recipient.id, accepted)
    return found


def _channel_actions(session: DbSession, drill: Drill) -> list[rules.ActionRecord]:
    """Return the actions the live channels recorded: acks of the drill's commands, receipts of its
    bulletins, and the exercise aid requests and consultations its cities made during play."""
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
    if drill.started_at is not None:
        players = cities.by_slugs(session, list(plan_of(drill).participating_cities))
        slugs = {c.id: c.slug for c in players}
        made = [
            (ExpectedAction.AID_REQUESTED, "aid_request", aid_requests.exercise_requests),
            (ExpectedAction.CONSULTATION_CALLED, "consultation", consultations.exercise_calls),
        ]
        for kind, prefix, find in made:
            for city_id, at, public_id in find(session, list(slugs), drill.started_at, drill.ended_at):
                actions.append(rules.ActionRecord(slugs[city_id], kind, at, ref=f"{prefix}:{public_id}"))
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
    # An inject to a city's platform is delivered when the platform accepted it.
    platforms = platform_deliveries(session, drill)
    deliveries = [
        rules.DeliveryRecord(
            number=row.number,
            city=row.city.slug,
            delivered_at=platforms[row.number][2] if row.number in platforms else row.delivered_at,
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


# After-action report narrative -----------------------------------------------------------------


def aar_report(drill: Drill) -> rules.AarReport:
    """Return the report's narrative as the rules see it: its revisions and its finalisation."""
    return rules.AarReport(
        revisions=tuple(
            rules.AarRevision(r.number, r.author, r.city.slug, r.at, r.content) for r in drill.aar_revisions
        ),
        finalised_at=drill.aar_finalised_at,
        finalised_by=drill.aar_finalised_by,
        final_revision=drill.aar_final_revision,
    )


def aar_narrative(drill: Drill) -> AarNarrative:
    """Return the newest narrative (empty before the first save), with one assessment for each of
    the plan's objectives in the plan's order, and the revision it is, as an editor starts from."""
    report = aar_report(drill)
    content = report.latest.content if report.latest is not None else {}
    stored = content.get("objectives")
    said = {
        o.objective: o
        for o in (
            ObjectiveAssessment.model_validate(item) for item in (stored if isinstance(stored, list) else [])
        )
    }
    return AarNarrative(
        base_revision=report.number,
        summary=str(content.get("summary") or ""),
        objectives=tuple(
            said.get(o.ref, ObjectiveAssessment(objective=o.ref)) for o in plan_of(drill).objectives
        ),
    )


def _aar_editable(drill: Drill) -> None:
    if drill.status != DrillStatus.ENDED:
        raise Conflict("the after-action report follows ENDEX", reason="drill_not_ended")
    if drill.aar is None:
        raise Conflict("the report's figures have not been drafted yet", reason="aar_not_drafted")


def _aar_refusal(error: rules.DrillRuleError, report: rules.AarReport, base: int) -> Conflict:
    details = {"latest": report.number, "base": base} if error.code == "stale_revision" else None
    return Conflict(str(error), reason=error.code, details=details)


def save_aar(session: DbSession, actor: Actor, drill_id: int, data: AarNarrative) -> DrillAarRevision | None:
    """Save the report's narrative as one of its evaluators; a save that changes something adds a
    revision (who, when, what), one that changes nothing adds none.

    A final report refuses any save (409), and so does a save over a newer revision.
    """
    drill = get(session, drill_id)
    if not writes_aar(actor, drill) or actor.city_id is None:
        raise Forbidden("only the drill's evaluators write its after-action report")
    _aar_editable(drill)
    refs = [o.ref for o in plan_of(drill).objectives]
    unknown = [o.objective for o in data.objectives if o.objective not in refs]
    if unknown:
        raise InvalidInput(f"the drill has no objective {unknown[0]!r}", reason="unknown_objective")
    ordered = sorted(data.objectives, key=lambda o: refs.index(o.objective))
    content = data.model_copy(update={"objectives": tuple(ordered)}).content()
    report = aar_report(drill)
    city = cities.by_id(session, actor.city_id)
    try:
        revision = rules.save_aar(
            report,
            author=actor.name[:64],
            city=city.slug,
            at=utcnow(),
            content=content,
            base_revision=data.base_revision,
        )
    except rules.DrillRuleError as error:
        raise _aar_refusal(error, report, data.base_revision) from error
    if revision is None:
        return None
    row = DrillAarRevision(
        drill=drill,
        number=revision.number,
        author=revision.author,
        author_user_id=actor.user_id,
        city_id=city.id,
        at=revision.at,
        content=dict(revision.content),
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "drill.aar_saved", "drill", drill.id, after={"revision": row.number})
    return row


def finalise_aar(session: DbSession, actor: Actor, drill_id: int) -> Drill:
    """Finalise the report as its lead evaluator; from then on its narrative is frozen."""
    drill = get(session, drill_id)
    lead = lead_evaluator(drill)
    if not is_lead_evaluator(actor, drill):
        raise Forbidden(f"only the lead evaluator ({lead}) finalises the after-action report")
    _aar_editable(drill)
    report = aar_report(drill)
    try:
        final = rules.finalise_aar(report, by=actor.name[:64], at=utcnow())
    except rules.DrillRuleError as error:
        raise _aar_refusal(error, report, report.number) from error
    drill.aar_finalised_at = final.finalised_at
    drill.aar_finalised_by = final.finalised_by
    drill.aar_final_revision = final.final_revision
    session.flush()
    audit.record(
        session, actor, "drill.aar_finalised", "drill", drill.id, after={"revision": drill.aar_final_revision}
    )
    return drill


# Hot wash --------------------------------------------------------------------------------------


def add_hotwash(session: DbSession, actor: Actor, drill_id: int, data: HotwashCreate) -> DrillHotwash:
    """Record a player's hot-wash form after ENDEX: a person of a participating city, once."""
    drill = get(session, drill_id)
    if actor.kind != "user" or actor.user_id is None or actor.city_id is None:
        raise Forbidden("a hot-wash form is a person's own")
    if drill.status != DrillStatus.ENDED:
        raise Conflict("the hot wash follows ENDEX", reason="drill_not_ended")
    city = cities.by_id(session, actor.city_id)
    if city.slug not in plan_of(drill).participating_cities:
        raise Forbidden("only the participating cities' people fill the hot wash")
    done = select(DrillHotwash.id).where(
        DrillHotwash.drill_id == drill.id, DrillHotwash.user_id == actor.user_id
    )
    if session.scalar(done) is not None:
        raise Conflict("you have already filled the hot wash of this drill", reason="hotwash_filled")
    form = DrillHotwash(
        drill_id=drill.id,
        user_id=actor.user_id,
        city_id=city.id,
        author=actor.name[:64],
        self_rating=data.self_rating,
        went_well=data.went_well,
        to_improve=data.to_improve,
        created_at=utcnow(),
    )
    session.add(form)
    session.flush()
    audit.record(session, actor, "drill.hotwash", "drill", drill.id, after={"self_rating": data.self_rating})
    return form


def hotwash_of(session: DbSession, drill_id: int) -> list[DrillHotwash]:
    """Return the drill's hot-wash forms in the order they came."""
    query = select(DrillHotwash).where(DrillHotwash.drill_id == drill_id).order_by(DrillHotwash.id)
    return list(session.scalars(query))


# After-action report export --------------------------------------------------------------------


def _seconds(value: object) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "—"


def _share(value: object) -> str:
    return f"{value * 100:.0f}%" if isinstance(value, int | float) else "—"


def aar_rows(drill: Drill) -> list[dict[str, object]]:
    """Return the drafted report's figures per city and overall, as rows (empty before the draft)."""
    if drill.aar is None:
        return []
    per_city = drill.aar.get("per_city")
    overall = drill.aar.get("overall")
    rows = [dict(r) for r in per_city if isinstance(r, dict)] if isinstance(per_city, list) else []
    if isinstance(overall, dict):
        rows.append({**overall, "city": None})
    return rows


def aar_csv(drill: Drill) -> bytes:
    """Return the report's per-city figures as CSV (UTF-8 with BOM, as spreadsheets open it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["城市", "应响应", "已响应", "按时响应", "按时率", "中位数（秒）", "P90（秒）", "未响应"])
    for row in aar_rows(drill):
        writer.writerow(
            [
                row.get("city") or "合计",
                row.get("measured"),
                row.get("answered"),
                row.get("in_time"),
                _share(row.get("in_time_share")),
                _seconds(row.get("median_s")),
                _seconds(row.get("p90_s")),
                row.get("unanswered"),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def aar_markdown(session: DbSession, drill: Drill) -> str:
    """Return the after-action report as Markdown: the drill, its timeline, the figures per city,
    the flagged injects, the observations by objective and the corrective actions."""
    plan = plan_of(drill)
    local = rules.DISPLAY_TZ

    def when(moment: datetime | None) -> str:
        return moment.astimezone(local).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"

    report = aar_report(drill)
    if report.is_final:
        by = f"{report.finalised_by} 于 {when(report.finalised_at)}"
        state = f"定稿（第 {report.final_revision} 版，{by} 定稿）"
    elif report.latest is not None:
        state = f"草稿（第 {report.number} 版，{report.latest.author} 于 {when(report.latest.at)} 修改）"
    else:
        state = "草稿（评估结论尚未撰写）"
    lead = lead_evaluator(drill)
    lines = [
        f"# 演练评估报告：{drill.name}（{'定稿' if report.is_final else '草稿'}）",
        "",
        f"- 报告状态：{state}",
        f"- 演练编号：{drill.public_id}",
        f"- 检验的预案：{'、'.join(plan.plans)}",
        f"- 主控城市：{drill.controlling_city.name_zh}；参演城市：{'、'.join(plan.participating_cities)}",
        f"- 开始：{when(drill.started_at)}；结束：{when(drill.ended_at)}（北京时间）",
        f"- 评估组长：{lead.name}（{lead.city}）",
        "",
        *_narrative_markdown(drill),
        "## 时间线",
        "",
        "| # | 目标 | 渠道 | 注入内容 | 送达 | 首次响应 | 响应（秒） | 按时 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    measured = {m.number: m for m in measures(session, drill)}
    for row in drill.injects:
        m = measured.get(row.number)
        on_time = {True: "是", False: "否"}.get(m.in_time, "—") if m and m.in_time is not None else "—"
        text = row.message.replace("|", "｜").replace("\n", " ")
        lines.append(
            f"| {row.number} | {row.city.name_zh} | {InjectChannel(row.channel).label_zh} | {text} "
            f"| {when(row.delivered_at)} | {when(m.first_action_at if m else None)} "
            f"| {_seconds(m.response_s if m else None)} | {on_time} |"
        )
    lines += [
        "",
        "## 各市响应",
        "",
        "| 城市 | 应响应 | 已响应 | 按时率 | 中位数（秒） | P90（秒） |",
        "|---|---|---|---|---|---|",
    ]
    for figures in aar_rows(drill):
        lines.append(
            f"| {figures.get('city') or '合计'} | {figures.get('measured')} | {figures.get('answered')} "
            f"| {_share(figures.get('in_time_share'))} | {_seconds(figures.get('median_s'))} "
            f"| {_seconds(figures.get('p90_s'))} |"
        )
    titles = {o.ref: o.title for o in plan.objectives}
    lines += ["", "## 评估观察（按目标）", ""]
    for observation in observations(session, drill.id):
        head = (
            f"{observation.objective} {titles.get(observation.objective, '')}".strip()
            if observation.objective
            else "总体"
        )
        rating = f"［{TaskRating(observation.rating).label_zh}］" if observation.rating else ""
        task = f" {observation.critical_task}" if observation.critical_task else ""
        by = f"（{observation.evaluator}，{when(observation.observed_at)}）"
        lines.append(f"- **{head}**{task}{rating}：{observation.text}{by}")
    lines += ["", "## 参演人员自评", ""]
    for form in hotwash_of(session, drill.id):
        lines.append(
            f"- {form.city.name_zh} {form.author}（{form.self_rating}/5）：做得好：{form.went_well}；"
            f"待改进：{form.to_improve}"
        )
    lines += ["", "## 整改措施", ""]
    for action in corrective_actions(session, drill):
        item = action.item
        lines.append(
            f"- {item.title}：责任城市 {item.owner_city.name_zh}，完成时限 {item.due_on.isoformat()}，"
            f"修订预案《{action.plan}》"
        )
    return "\n".join(lines) + "\n"


def _narrative_markdown(drill: Drill) -> list[str]:
    """Return the evaluators' narrative as Markdown: the summary, then each objective's rating,
    strengths and areas for improvement."""
    narrative = aar_narrative(drill)
    titles = {o.ref: o.title for o in plan_of(drill).objectives}
    lines = ["## 评估结论", "", "### 总体评价", "", narrative.summary or "（未填写）", ""]
    for assessment in narrative.objectives:
        lines += [f"### {assessment.objective} {titles.get(assessment.objective, '')}".rstrip(), ""]
        rating = assessment.rating.label_zh if assessment.rating else "未评定"
        # A line break inside an item stays inside it: Markdown continues an item on an indented line.
        strengths = (assessment.strengths or "（未填写）").replace("\n", "\n  ")
        improvements = (assessment.improvements or "（未填写）").replace("\n", "\n  ")
        lines += [f"- 评定：{rating}", f"- 优点：{strengths}", f"- 待改进：{improvements}", ""]
    return lines


# Corrective actions ----------------------------------------------------------------------------

CORRECTIVE_ORIGIN = "drill"


def may_evaluate(actor: Actor, drill: Drill) -> bool:
    """Return whether the actor evaluates the drill: one of its evaluators or controllers."""
    return is_evaluator(actor, drill) or is_controller(actor, drill)


def add_corrective_action(
    session: DbSession, actor: Actor, drill_id: int, data: CorrectiveActionCreate
) -> DrillCorrectiveAction:
    """Open a corrective action of an ended drill as an action item of the shared engine: owned by
    one participating city, due on a day, followed up by the controlling city, chased by the
    engine's reminders like a meeting's; and linked to the plan (预案) it revises."""
    drill = get(session, drill_id)
    if not may_evaluate(actor, drill):
        raise Forbidden("only the drill's evaluators and controllers set corrective actions")
    if drill.status != DrillStatus.ENDED:
        raise Conflict("corrective actions follow the evaluation, after ENDEX", reason="drill_not_ended")
    plan = plan_of(drill)
    if data.plan not in plan.plans:
        raise InvalidInput(f"the drill does not exercise the plan {data.plan!r}", reason="unknown_plan")
    if data.owner_city not in plan.participating_cities:
        raise InvalidInput(f"{data.owner_city} does not take part in the drill", reason="not_participating")
    if data.objective is not None and data.objective not in {o.ref for o in plan.objectives}:
        raise InvalidInput(f"the drill has no objective {data.objective!r}", reason="unknown_objective")
    (item,) = action_items.open_items(
        session,
        actor,
        [
            ActionItemCreate(
                owner_city=data.owner_city,
                title=exercise_free_title(data.title),
                detail=data.detail,
                due_on=data.due_on,
            )
        ],
        origin=CORRECTIVE_ORIGIN,
        origin_id=drill.id,
        context_id=drill.public_id,
        chair_city_id=drill.controlling_city_id,
    )
    action = DrillCorrectiveAction(
        drill_id=drill.id,
        action_item_id=item.id,
        plan=data.plan,
        objective=data.objective,
        created_at=utcnow(),
    )
    session.add(action)
    session.flush()
    audit.record(
        session,
        actor,
        "drill.corrective_action",
        "drill",
        drill.id,
        after={"action_item": str(item.public_id), "plan": data.plan, "owner_city": data.owner_city},
    )
    return action


def exercise_free_title(title: str) -> str:
    """Return a corrective action's title without the exercise prefix: the revision is real work."""
    return title.removeprefix(EXERCISE_PREFIX).strip() or title


@dataclass(frozen=True)
class CorrectiveAction:
    """A drill's corrective action with its action item, as pages show it."""

    plan: str
    objective: str | None
    item: ActionItem
    overdue: bool


def corrective_actions(
    session: DbSession, drill: Drill, now: datetime | None = None
) -> list[CorrectiveAction]:
    """Return the drill's corrective actions in the order they were set, with their items' state."""
    now = now or utcnow()
    rows = session.scalars(
        select(DrillCorrectiveAction)
        .where(DrillCorrectiveAction.drill_id == drill.id)
        .order_by(DrillCorrectiveAction.id)
    )
    found = []
    for row in rows:
        item = action_items.get_by_id(session, row.action_item_id)
        found.append(CorrectiveAction(row.plan, row.objective, item, action_items.is_overdue(item, now)))
    return found


# Calendar --------------------------------------------------------------------------------------


def calendar_events(session: DbSession, city: City | None = None) -> list[calendar.CalendarMeeting]:
    """Return the approved drills (all, or those a city takes part in) as events of the conference
    calendar: STARTEX to ENDEX, 【演练】 in the title, the controlling city organising and the
    participating cities invited. A corrective action's VTODO relates to its drill's event."""
    query = select(Drill).where(Drill.status != DrillStatus.DRAFT).order_by(Drill.startex, Drill.id)
    found = []
    for drill in session.scalars(query):
        plan = plan_of(drill)
        if city is not None and city.slug not in plan.participating_cities:
            continue
        controlling = drill.controlling_city.slug
        found.append(
            calendar.CalendarMeeting(
                public_id=drill.public_id,
                sequence=0,
                title=exercise_title(drill.name),
                starts_at=drill.startex,
                ends_at=drill.endex,
                organizer_city=controlling,
                chair_city=controlling,
                invitees=tuple(
                    calendar.Invitee(slug, partstat=calendar.Partstat.ACCEPTED)
                    for slug in plan.participating_cities
                ),
                updated_at=drill.approved_at or drill.created_at,
                description=f"检验的预案：{'、'.join(plan.plans)}\n{plan.scenario}".strip(),
            )
        )
    return found


# Drill programme -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgrammeLine:
    """One member city's drill programme for a year, with the drills it takes part in."""

    row: rules.ProgrammeRow
    drills: tuple[Drill, ...]


def programme(session: DbSession, year: int) -> list[ProgrammeLine]:
    """Return every member city's drills planned and held in a year (STARTEX in Asia/Shanghai),
    against the seed plan's 95 % drill rate.

    A drill is planned once approved (a draft is not yet in the programme) and held once it was
    played to ENDEX; it counts for each of its participating cities.
    """
    first = datetime(year, 1, 1, tzinfo=rules.DISPLAY_TZ)
    following = datetime(year + 1, 1, 1, tzinfo=rules.DISPLAY_TZ)
    scheduled = list(
        session.scalars(
            select(Drill)
            .where(Drill.status != DrillStatus.DRAFT, Drill.startex >= first, Drill.startex < following)
            .order_by(Drill.startex, Drill.id)
        )
    )
    members = [c.slug for c in cities.all_cities(session)]
    planned = dict.fromkeys(((slug, year) for slug in members), 0)
    taking_part: dict[str, list[Drill]] = {slug: [] for slug in members}
    held = []
    for drill in scheduled:
        players = tuple(plan_of(drill).participating_cities)
        for slug in players:
            planned[(slug, year)] = planned.get((slug, year), 0) + 1
            taking_part.setdefault(slug, []).append(drill)
        held.append(rules.DrillHeld(str(drill.id), drill.startex, players, drill.status == DrillStatus.ENDED))
    rows = rules.drill_programme(planned, held)
    return [ProgrammeLine(row, tuple(taking_part.get(row.city, ()))) for row in rows if row.year == year]


# Scheduling ------------------------------------------------------------------------------------


def _enqueue(session: DbSession, flow: str, key: str, drill_id: int, number: int | None = None) -> None:
    parameters: dict[str, object] = {"drill_id": drill_id}
    if number is not None:
        parameters["number"] = number
    flow_requests.enqueue(session, flow, key=key, parameters=parameters)


# How soon the timer looks again at a drill whose STARTEX was asked for: its injects get their
# times only once the STARTEX step has run, and the first are due at once.
STARTING_RECHECK = timedelta(seconds=0.2)


def timed_steps(session: DbSession, now: datetime, settings: Settings | None = None) -> datetime | None:
    """Enqueue the drill steps that have times of their own and are due at `now` (STARTEX, the
    due injects, ENDEX); return when the next one is due, or None when no drill has one coming.

    This is the scheduler's timer (`Schedule.timer`): it wakes at the returned moment rather than
    at its next tick, so an inject goes out at its time and not up to a tick later. It reads only
    the drills' own rows, so it stays cheap however often it runs.
    """
    upcoming: list[datetime] = []
    for drill in session.scalars(select(Drill).where(Drill.status == DrillStatus.APPROVED)):
        if drill.startex <= now:
            _enqueue(session, STARTEX, rules.startex_key(drill.id), drill.id)
            upcoming.append(now + STARTING_RECHECK)
        else:
            upcoming.append(drill.startex)
    for drill in session.scalars(select(Drill).where(Drill.status.in_(DrillStatus.IN_PLAY))):
        clock = clock_of(drill)
        slots = [_slot(row) for row in drill.injects]
        due = rules.due_injects(slots, clock, now)
        if due:
            # One run for the injects that fall due together (a round to ten cities is one moment),
            # keyed by the first: ten runs would queue for the flow threads and the last inject
            # would go out seconds late. An inject the run leaves undelivered is due again at the
            # next look and is asked for under its own key.
            first, *others = (slot.number for slot in due)
            flow_requests.enqueue(
                session,
                INJECT,
                key=rules.inject_key(drill.id, first),
                parameters={"drill_id": drill.id, "number": first, "also": others},
            )
        if drill.status == DrillStatus.RUNNING:
            upcoming += [
                s.due_at
                for s in slots
                if s.state is rules.SlotState.PENDING and s.due_at is not None and s.due_at > now
            ]
        endex_due = clock.endex_due()
        if endex_due is not None and endex_due <= now:
            _enqueue(session, ENDEX, rules.endex_key(drill.id), drill.id)
        elif endex_due is not None:
            upcoming.append(endex_due)
    return min(upcoming, default=None)


def _may_flag(drill: Drill, now: datetime) -> bool:
    """Return whether an inject of the drill may be unanswered past its time: one delivered, not yet
    flagged, whose expected time has run out. Measuring reads every channel's records, so a tick
    measures only a drill where a flag can fall (a platform's acceptance is never before the row's
    delivery, so this never misses one)."""
    return any(
        row.expected_within_s is not None
        and row.delivered_at is not None
        and row.flagged_at is None
        and row.delivered_at + rules.wall_time(row.expected_within_s, drill.time_scale) <= now
        for row in drill.injects
    )


def schedule_steps(session: DbSession, now: datetime, settings: Settings | None = None) -> None:
    """Enqueue every drill step due at `now`: STARTEX, due injects, flags, ENDEX, the AAR draft.

    Each step's key names it (`drill:{id}:inject:{n}`, …), so any number of ticking processes
    enqueue it once; the inject table is the timer, and no flow waits between injects.
    """
    timed_steps(session, now, settings)
    for drill in session.scalars(select(Drill).where(Drill.status.in_(DrillStatus.IN_PLAY))):
        if not _may_flag(drill, now):
            continue
        for measure in measures(session, drill, now):
            row = next(r for r in drill.injects if r.number == measure.number)
            if measure.flagged and row.flagged_at is None:
                _enqueue(session, FLAG, rules.flag_key(drill.id, measure.number), drill.id, measure.number)
    unreported = select(Drill.id).where(Drill.status == DrillStatus.ENDED, Drill.aar_drafted_at.is_(None))
    for drill_id in session.scalars(unreported):
        _enqueue(session, AAR, rules.aar_key(drill_id), drill_id)


def msel_error_lines(error: ContractError) -> list[str]:
    """Return a refused MSEL's problems as lines naming row and column."""
    return [str(problem) for problem in error.problems]


def injects_in_play(session: DbSession, limit: int = 500) -> list[DrillInject]:
    """Return the injects already delivered in drills now running or paused, newest first (for the map)."""
    query = (
        select(DrillInject)
        .join(Drill, Drill.id == DrillInject.drill_id)
        .where(Drill.status.in_(DrillStatus.IN_PLAY), DrillInject.delivered_at.is_not(None))
        .order_by(DrillInject.delivered_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
