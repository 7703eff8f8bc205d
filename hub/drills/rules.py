"""The rules of playing and measuring a drill, as pure functions over plain records.

Nothing here reads a clock, a database or a broker: callers pass `now` and the rows they hold, and
store what comes back. That is what lets the inject table be the drill's timer (a scheduler tick
asks `due_injects(slots, clock, now)` and enqueues one keyed step per answer; no flow run sleeps
between injects) and what makes every rule testable to the second.

Time: a drill runs on the wall clock from `DrillClock.started_at` at scale k (k = 1 in earnest;
k = 30 plays a two-hour tabletop in four minutes for a demo). An inject at offset t is due at
`started_at + t / k`; the time it is expected to be answered within is divided by k as well.
Pausing stops the timer; resuming shifts every pending inject by the length of the pause, while
delivered and skipped ones keep their times. Nothing is ever deleted: a skipped inject keeps its
reason, an inject not played by ENDEX is marked so.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, cast
from zoneinfo import ZoneInfo

from contracts.drills import ExpectedAction, Inject, TaskRating

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")
# The seed plan's drill rate: at least 95 % of planned drills held (S8).
DRILL_RATE_TARGET_PERCENT = 95
MAX_SCALE = 3600.0


class DrillRuleError(ValueError):
    """A control action the drill's state does not allow; `code` names the rule for translation."""

    def __init__(self, code: str, message: str) -> None:
        """Keep a stable code beside the English message."""
        self.code = code
        super().__init__(message)


# Step keys -------------------------------------------------------------------------------------

StepName = Literal["startex", "inject", "flag", "endex", "aar"]
_DRILL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_KEY_RE = re.compile(
    r"^drill:(?P<drill>[A-Za-z0-9][A-Za-z0-9_-]{0,63}):"
    r"(?:(?P<whole>startex|endex|aar)|(?P<per>inject|flag):(?P<number>[1-9]\d{0,8}))$"
)


@dataclass(frozen=True, slots=True)
class StepKey:
    """A drill step that must run once: the key of its flow request."""

    drill_id: str
    step: StepName
    number: int | None = None

    def __str__(self) -> str:
        """Render as `drill:{id}:{step}` or `drill:{id}:{step}:{n}`."""
        tail = f":{self.number}" if self.number is not None else ""
        return f"drill:{self.drill_id}:{self.step}{tail}"


def _drill_id(drill_id: int | str) -> str:
    text = str(drill_id)
    if isinstance(drill_id, bool) or not _DRILL_ID_RE.match(text):
        raise ValueError(f"invalid drill id {drill_id!r}")
    return text


def _number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"invalid inject number {number!r}")
    return number


def startex_key(drill_id: int | str) -> str:
    """Return the key of the step that starts the drill."""
    return str(StepKey(_drill_id(drill_id), "startex"))


def inject_key(drill_id: int | str, number: int) -> str:
    """Return the key of the step that delivers inject `number`."""
    return str(StepKey(_drill_id(drill_id), "inject", _number(number)))


def flag_key(drill_id: int | str, number: int) -> str:
    """Return the key of the step that flags inject `number` unanswered (and may release its contingency)."""
    return str(StepKey(_drill_id(drill_id), "flag", _number(number)))


def endex_key(drill_id: int | str) -> str:
    """Return the key of the step that ends the drill."""
    return str(StepKey(_drill_id(drill_id), "endex"))


def aar_key(drill_id: int | str) -> str:
    """Return the key of the step that drafts the after-action report."""
    return str(StepKey(_drill_id(drill_id), "aar"))


def parse_step_key(key: str) -> StepKey:
    """Read a drill step key back, or raise ValueError for anything else."""
    match = _KEY_RE.match(key)
    if match is None:
        raise ValueError(f"not a drill step key: {key!r}")
    if match["whole"]:
        return StepKey(match["drill"], cast(StepName, match["whole"]))
    return StepKey(match["drill"], cast(StepName, match["per"]), int(match["number"]))


# Clock and timetable ---------------------------------------------------------------------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment


def _check_scale(scale: float) -> float:
    if not (math.isfinite(scale) and 1.0 <= scale <= MAX_SCALE):
        raise ValueError(f"time scale must be between 1 and {MAX_SCALE:g}, not {scale!r}")
    return scale


def wall_time(seconds: float, scale: float = 1.0) -> timedelta:
    """Return how long `seconds` of scenario time take on the wall clock at `scale`."""
    return timedelta(seconds=seconds / _check_scale(scale))


@dataclass(frozen=True, slots=True)
class DrillClock:
    """A drill's clock: when play started, how long it lasts, its scale, and its pauses."""

    started_at: datetime
    duration: timedelta
    scale: float = 1.0
    paused_at: datetime | None = None
    paused_total: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        """Refuse a naive start, a non-positive duration or a scale out of range."""
        _aware(self.started_at, "started_at")
        _check_scale(self.scale)
        if self.duration <= timedelta(0):
            raise ValueError("a drill lasts a positive time")

    @property
    def paused(self) -> bool:
        """Return whether play is paused."""
        return self.paused_at is not None

    def endex_due(self) -> datetime | None:
        """Return when ENDEX falls on the wall clock; None while paused (it moves with the pause)."""
        if self.paused:
            return None
        return self.started_at + wall_time(self.duration.total_seconds(), self.scale) + self.paused_total

    def scenario_elapsed(self, now: datetime) -> timedelta:
        """Return the scenario time reached at `now` ("T+0:42:10" on the controllers' screen)."""
        stopped = self.paused_at if self.paused_at is not None else now
        played = min(stopped, now) - self.started_at - self.paused_total
        return max(timedelta(0), played) * self.scale


class SlotState(StrEnum):
    """Where one inject stands in play."""

    HELD = "held"
    PENDING = "pending"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    NOT_PLAYED = "not_played"


@dataclass(frozen=True, slots=True)
class Slot:
    """One inject's place in the timetable: when it is due and what became of it."""

    number: int
    offset_s: int
    state: SlotState
    due_at: datetime | None = None
    contingency_of: int | None = None
    delivered_at: datetime | None = None
    manual: bool = False
    skip_reason: str | None = None


def timetable(injects: Iterable[Inject], started_at: datetime, scale: float = 1.0) -> tuple[Slot, ...]:
    """Return the slots of a drill starting at `started_at`: each inject due at its scaled offset,
    each contingency held until released; in play order."""
    _aware(started_at, "started_at")
    slots = []
    for inject in injects:
        if inject.contingency_of is not None:
            slots.append(Slot(inject.number, inject.offset_s, SlotState.HELD, None, inject.contingency_of))
            continue
        due = started_at + wall_time(inject.offset_s, scale)
        slots.append(Slot(inject.number, inject.offset_s, SlotState.PENDING, due))
    return _ordered(slots)


def _ordered(slots: Iterable[Slot]) -> tuple[Slot, ...]:
    # Pending first by due time; held and finished ones after, by offset. Stable, so a caller can
    # compare timetables and find them equal.
    def key(slot: Slot) -> tuple[int, float, int]:
        if slot.state is SlotState.PENDING and slot.due_at is not None:
            return (0, slot.due_at.timestamp(), slot.number)
        return (1, float(slot.offset_s), slot.number)

    return tuple(sorted(slots, key=key))


def due_injects(slots: Iterable[Slot], clock: DrillClock, now: datetime) -> tuple[Slot, ...]:
    """Return the pending injects due at `now`, earliest first; none while paused.

    An inject due before the last tick is still returned, even past ENDEX until the ENDEX step
    closes the timetable: the caller delivers it late and records the lateness, rather than
    dropping it. Each answer becomes `inject_key(drill, number)`, so two processes ticking at once
    deliver it once.
    """
    _aware(now, "now")
    if clock.paused:
        return ()
    due = [s for s in slots if s.state is SlotState.PENDING and s.due_at is not None and s.due_at <= now]
    return tuple(sorted(due, key=lambda s: (s.due_at, s.number)))


def _find(slots: Sequence[Slot], number: int) -> Slot:
    for slot in slots:
        if slot.number == number:
            return slot
    raise DrillRuleError("unknown_inject", f"the drill has no inject {number}")


def _swap(slots: Sequence[Slot], new: Slot) -> tuple[Slot, ...]:
    return _ordered(new if slot.number == new.number else slot for slot in slots)


def mark_delivered(slots: Sequence[Slot], number: int, at: datetime) -> tuple[Slot, ...]:
    """Record inject `number` delivered at `at`; a repeated report of the same delivery changes nothing."""
    _aware(at, "at")
    slot = _find(slots, number)
    if slot.state is SlotState.DELIVERED:
        return tuple(slots)
    if slot.state is not SlotState.PENDING:
        raise DrillRuleError("not_pending", f"inject {number} is {slot.state.value}, not pending")
    return _swap(slots, replace(slot, state=SlotState.DELIVERED, delivered_at=at))


def pause(clock: DrillClock, at: datetime) -> DrillClock:
    """Stop the drill's timer at `at`."""
    _aware(at, "at")
    if clock.paused:
        raise DrillRuleError("already_paused", "the drill is already paused")
    if at < clock.started_at:
        raise DrillRuleError("before_startex", "a drill cannot be paused before it starts")
    return replace(clock, paused_at=at)


def resume(clock: DrillClock, slots: Sequence[Slot], at: datetime) -> tuple[DrillClock, tuple[Slot, ...]]:
    """Restart the timer at `at`: every pending inject moves by the pause, delivered ones never move."""
    _aware(at, "at")
    if clock.paused_at is None:
        raise DrillRuleError("not_paused", "the drill is not paused")
    if at < clock.paused_at:
        raise DrillRuleError("resume_before_pause", "a drill cannot resume before it was paused")
    length = at - clock.paused_at
    moved = [
        replace(slot, due_at=slot.due_at + length)
        if slot.state is SlotState.PENDING and slot.due_at is not None
        else slot
        for slot in slots
    ]
    return replace(clock, paused_at=None, paused_total=clock.paused_total + length), _ordered(moved)


def skip(slots: Sequence[Slot], number: int, reason: str) -> tuple[Slot, ...]:
    """Skip inject `number` with a reason; it stays in the record. Skipping it again changes nothing."""
    reason = reason.strip()
    if not reason:
        raise DrillRuleError("reason_required", "say why the inject is skipped")
    slot = _find(slots, number)
    if slot.state is SlotState.SKIPPED:
        return tuple(slots)
    if slot.state not in (SlotState.PENDING, SlotState.HELD):
        raise DrillRuleError("not_skippable", f"inject {number} is {slot.state.value}; it cannot be skipped")
    return _swap(slots, replace(slot, state=SlotState.SKIPPED, skip_reason=reason))


def send_now(slots: Sequence[Slot], number: int, at: datetime) -> tuple[Slot, ...]:
    """Make inject `number` (pending or a held contingency) due at `at`, by a controller's hand."""
    _aware(at, "at")
    slot = _find(slots, number)
    if slot.state not in (SlotState.PENDING, SlotState.HELD):
        raise DrillRuleError("not_sendable", f"inject {number} is {slot.state.value}; it cannot be sent")
    return _swap(slots, replace(slot, state=SlotState.PENDING, due_at=at, manual=True))


def release_contingency(slots: Sequence[Slot], number: int, at: datetime) -> tuple[Slot, ...]:
    """Release held contingency `number`, due at `at` (when its parent went unanswered)."""
    _aware(at, "at")
    slot = _find(slots, number)
    if slot.state is not SlotState.HELD:
        raise DrillRuleError("not_held", f"inject {number} is {slot.state.value}, not a held contingency")
    return _swap(slots, replace(slot, state=SlotState.PENDING, due_at=at))


def add_contingency(
    slots: Sequence[Slot], inject: Inject, *, release_at: datetime | None = None
) -> tuple[Slot, ...]:
    """Add a contingency inject during play: held, or due at `release_at`.

    The inject is checked against the drill by the caller (`Inject.model_validate` with the drill's
    `DrillContext`); here only its place among the slots.
    """
    if inject.contingency_of is None:
        raise DrillRuleError("not_a_contingency", "a contingency names the inject it stands in for")
    if any(slot.number == inject.number for slot in slots):
        raise DrillRuleError("duplicate_number", f"inject number {inject.number} is already used")
    parent = _find(slots, inject.contingency_of)
    if parent.state in (SlotState.SKIPPED, SlotState.NOT_PLAYED):
        raise DrillRuleError("parent_not_played", f"inject {parent.number} is {parent.state.value}")
    if release_at is None:
        new = Slot(inject.number, inject.offset_s, SlotState.HELD, None, inject.contingency_of)
    else:
        new = Slot(
            inject.number,
            inject.offset_s,
            SlotState.PENDING,
            _aware(release_at, "release_at"),
            inject.contingency_of,
            manual=True,
        )
    return _ordered([*slots, new])


def contingencies_to_release(slots: Iterable[Slot], flagged: Iterable[int]) -> tuple[int, ...]:
    """Return the held contingencies whose parent inject is flagged unanswered."""
    parents = set(flagged)
    return tuple(sorted(s.number for s in slots if s.state is SlotState.HELD and s.contingency_of in parents))


def close_at_endex(slots: Sequence[Slot]) -> tuple[Slot, ...]:
    """Mark every inject still pending or held as not played; nothing is deleted."""
    return _ordered(
        replace(slot, state=SlotState.NOT_PLAYED)
        if slot.state in (SlotState.PENDING, SlotState.HELD)
        else slot
        for slot in slots
    )


def lateness(slot: Slot) -> timedelta | None:
    """Return how late a delivered inject went out against its due time (negative if early)."""
    if slot.delivered_at is None or slot.due_at is None:
        return None
    return slot.delivered_at - slot.due_at


# Responses -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """An inject as delivered to its target, with what was expected of it."""

    number: int
    city: str
    delivered_at: datetime | None
    expected_action: ExpectedAction | None = None
    expected_within_s: int | None = None
    device: str | None = None
    acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """Something a city (or one of its devices) did inside the drill, with its time.

    `inject_number` is set when the action is on the delivered thing itself (the receipt for the
    inject's bulletin, the ack of its command); an action taken on the city's own initiative (an
    aid request, a consultation) has none and answers the earliest inject still waiting for it.
    """

    city: str
    kind: ExpectedAction
    at: datetime
    inject_number: int | None = None
    device: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseMeasure:
    """How one target answered one inject."""

    number: int
    city: str
    device: str | None
    expected_action: ExpectedAction | None
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    deadline: datetime | None
    first_action_at: datetime | None
    action_ref: str | None
    response_s: float | None
    in_time: bool | None
    flagged: bool

    @property
    def measured(self) -> bool:
        """Return whether the inject was delivered and expects an action (so it counts in the AAR)."""
        return self.expected_action is not None and self.delivered_at is not None


def _qualifies(action: ActionRecord, delivery: DeliveryRecord) -> bool:
    return (
        delivery.delivered_at is not None
        and action.kind is delivery.expected_action
        and action.city == delivery.city
        and (delivery.device is None or action.device == delivery.device)
        and action.at >= delivery.delivered_at
    )


def measure_responses(
    deliveries: Sequence[DeliveryRecord],
    actions: Iterable[ActionRecord],
    *,
    now: datetime,
    scale: float = 1.0,
) -> tuple[ResponseMeasure, ...]:
    """Measure each delivery: seconds from delivery to the first qualifying action, and a flag
    when none had come by the expected time (scaled like the drill).

    Qualifying: the expected kind, by the target city (and device), at or after delivery. An action
    naming its inject answers that inject only; one naming none answers one inject at most, the
    earliest delivered of that city still waiting for it.
    """
    _aware(now, "now")
    ordered = sorted(actions, key=lambda a: (a.at, a.ref or ""))
    first: dict[int, ActionRecord] = {}
    for action in ordered:
        if action.inject_number is None:
            continue
        for delivery in deliveries:
            if delivery.number == action.inject_number and _qualifies(action, delivery):
                first.setdefault(delivery.number, action)
    waiting = sorted(
        (d for d in deliveries if d.delivered_at is not None and d.expected_action is not None),
        key=lambda d: (d.delivered_at, d.number),
    )
    for action in ordered:
        if action.inject_number is not None:
            continue
        for delivery in waiting:
            earlier = first.get(delivery.number)
            if _qualifies(action, delivery) and (earlier is None or earlier.at > action.at):
                first[delivery.number] = action
                break
    return tuple(_measure(d, first.get(d.number), now, scale) for d in deliveries)


def _measure(
    delivery: DeliveryRecord, action: ActionRecord | None, now: datetime, scale: float
) -> ResponseMeasure:
    deadline = None
    if delivery.delivered_at is not None and delivery.expected_within_s is not None:
        deadline = delivery.delivered_at + wall_time(delivery.expected_within_s, scale)
    at = action.at if action is not None else None
    response_s = (at - delivery.delivered_at).total_seconds() if at and delivery.delivered_at else None
    in_time: bool | None = None
    flagged = False
    if deadline is not None:
        if at is not None and at <= deadline:
            in_time = True
        elif now >= deadline:
            in_time = False
            flagged = True
    return ResponseMeasure(
        number=delivery.number,
        city=delivery.city,
        device=delivery.device,
        expected_action=delivery.expected_action,
        delivered_at=delivery.delivered_at,
        acknowledged_at=delivery.acknowledged_at,
        deadline=deadline,
        first_action_at=at,
        action_ref=action.ref if action is not None else None,
        response_s=response_s,
        in_time=in_time,
        flagged=flagged,
    )


# After-action report ---------------------------------------------------------------------------


def percentile(values: Sequence[float], percent: float) -> float | None:
    """Return the nearest-rank percentile (an observed value, never an interpolated one)."""
    if not values:
        return None
    if not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


@dataclass(frozen=True, slots=True)
class ResponseStats:
    """Response figures for one city (or, with `city` None, the whole drill)."""

    city: str | None
    measured: int
    answered: int
    in_time: int
    median_s: float | None
    p90_s: float | None

    @property
    def unanswered(self) -> int:
        """Return how many measured injects got no qualifying action at all."""
        return self.measured - self.answered

    @property
    def in_time_share(self) -> float | None:
        """Return the share of measured injects answered in time; None when none were measured."""
        return self.in_time / self.measured if self.measured else None


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    """An evaluator's observation, as stored."""

    evaluator: str
    text: str
    at: datetime
    objective: str | None = None
    critical_task: str | None = None
    rating: TaskRating | None = None


@dataclass(frozen=True, slots=True)
class ObjectiveFindings:
    """The observations on one objective (None: on the drill in general), with a tally of ratings."""

    objective: str | None
    observations: tuple[ObservationRecord, ...]
    ratings: Mapping[TaskRating, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AarStatistics:
    """The computed part of a draft after-action report."""

    overall: ResponseStats
    per_city: tuple[ResponseStats, ...]
    findings: tuple[ObjectiveFindings, ...]
    flagged: tuple[ResponseMeasure, ...]


def response_stats(city: str | None, measures: Iterable[ResponseMeasure]) -> ResponseStats:
    """Sum up measured responses: counts, median and p90 of the answered ones' seconds."""
    counted = [m for m in measures if m.measured]
    seconds = [m.response_s for m in counted if m.response_s is not None]
    return ResponseStats(
        city=city,
        measured=len(counted),
        answered=len(seconds),
        in_time=sum(1 for m in counted if m.in_time),
        median_s=statistics.median(seconds) if seconds else None,
        p90_s=percentile(seconds, 90),
    )


def aar_statistics(
    responses: Iterable[ResponseMeasure],
    observations: Iterable[ObservationRecord],
    *,
    cities: Iterable[str] = (),
    objectives: Sequence[str] = (),
) -> AarStatistics:
    """Compute the AAR's figures: per city and overall response times and in-time share, the
    flagged injects, and the observations grouped by objective in the plan's order.

    Median and p90 are over the answered injects; the unanswered count beside them, and the
    in-time share counts them as missed, so a city that never answers cannot look fast. `cities`
    lists participants to show even when no inject reached them.
    """
    measures = list(responses)
    by_city: dict[str, list[ResponseMeasure]] = defaultdict(list)
    for city in cities:
        by_city[city] = []
    for measure in measures:
        by_city[measure.city].append(measure)
    per_city = tuple(response_stats(city, by_city[city]) for city in sorted(by_city))
    grouped: dict[str | None, list[ObservationRecord]] = defaultdict(list)
    for observation in sorted(observations, key=lambda o: (o.at, o.evaluator)):
        grouped[observation.objective].append(observation)
    order = {ref: index for index, ref in enumerate(objectives)}
    keys = sorted(grouped, key=lambda ref: (ref is None, order.get(ref, len(order)) if ref else 0, ref or ""))
    findings = tuple(
        ObjectiveFindings(
            objective=key,
            observations=tuple(grouped[key]),
            ratings={
                rating: count
                for rating in TaskRating
                if (count := sum(1 for o in grouped[key] if o.rating is rating))
            },
        )
        for key in keys
    )
    flagged = tuple(m for m in measures if m.flagged)
    return AarStatistics(response_stats(None, measures), per_city, findings, flagged)


# After-action report narrative -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AarRevision:
    """One saved version of the report's narrative: its number, who saved it, when, and the text."""

    number: int
    author: str
    city: str
    at: datetime
    content: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class AarReport:
    """The narrative of one report: an append-only list of revisions and, once final, who made it so."""

    revisions: tuple[AarRevision, ...] = ()
    finalised_at: datetime | None = None
    finalised_by: str | None = None
    final_revision: int | None = None

    @property
    def latest(self) -> AarRevision | None:
        """Return the newest revision, or None before the first save."""
        return self.revisions[-1] if self.revisions else None

    @property
    def number(self) -> int:
        """Return the newest revision's number, 0 before the first save."""
        return self.revisions[-1].number if self.revisions else 0

    @property
    def is_final(self) -> bool:
        """Whether the lead evaluator has finalised the report, which freezes it."""
        return self.finalised_at is not None


def _is_blank(content: Mapping[str, object]) -> bool:
    return not str(content.get("summary") or "").strip() and not content.get("objectives")


def save_aar(
    report: AarReport,
    *,
    author: str,
    city: str,
    at: datetime,
    content: Mapping[str, object],
    base_revision: int,
) -> AarRevision | None:
    """Return the revision a save appends, or None when it changes nothing; refuse any save once
    the report is final or when it was made over a newer revision (as the minutes of a meeting)."""
    if report.is_final:
        raise DrillRuleError("aar_final", "the after-action report is final and can no longer be edited")
    if base_revision != report.number:
        raise DrillRuleError(
            "stale_revision",
            f"the report was saved as revision {report.number} since revision {base_revision} was opened;"
            " reload and apply the changes again",
        )
    latest = report.latest
    if latest is not None and dict(latest.content) == dict(content):
        return None
    if latest is None and _is_blank(content):
        return None
    at = _aware(at, "at")
    if latest is not None and at < latest.at:
        raise DrillRuleError("revision_before_latest", "a revision cannot be dated before the one it follows")
    return AarRevision(report.number + 1, author, city, at, dict(content))


def finalise_aar(report: AarReport, *, by: str, at: datetime) -> AarReport:
    """Finalise the report at its latest revision; from then on it is frozen."""
    if report.is_final:
        raise DrillRuleError("aar_final", "the after-action report is already final")
    if report.latest is None:
        raise DrillRuleError("aar_empty", "the report has no narrative to finalise yet")
    return replace(report, finalised_at=_aware(at, "at"), finalised_by=by, final_revision=report.number)


# Drill programme -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrillHeld:
    """A drill as the programme counts it: its STARTEX, its cities, and whether it was played."""

    drill_id: str
    startex: datetime
    cities: tuple[str, ...]
    held: bool


@dataclass(frozen=True, slots=True)
class ProgrammeRow:
    """One city's drill programme for one year, against the drill-rate target."""

    city: str
    year: int
    planned: int
    held: int
    drill_ids: tuple[str, ...]
    target_percent: int = DRILL_RATE_TARGET_PERCENT

    @property
    def rate(self) -> float | None:
        """Return held ÷ planned; None when nothing was planned."""
        return self.held / self.planned if self.planned else None

    @property
    def meets_target(self) -> bool | None:
        """Return whether the rate reaches the target (in whole numbers, no float rounding)."""
        if not self.planned:
            return None
        return self.held * 100 >= self.target_percent * self.planned

    @property
    def shortfall(self) -> int:
        """Return how many more drills must be held to reach the target."""
        needed = -(-self.target_percent * self.planned // 100)
        return max(0, needed - self.held)


def drill_programme(
    planned: Mapping[tuple[str, int], int],
    drills: Iterable[DrillHeld],
    *,
    target_percent: int = DRILL_RATE_TARGET_PERCENT,
) -> tuple[ProgrammeRow, ...]:
    """Return planned vs held drills per city per year (the year of STARTEX in Asia/Shanghai).

    A drill counts once for each of its participating cities, and only if it was played to
    ENDEX; `planned` maps (city, year) to the number of drills in that city's plan.
    """
    held: dict[tuple[str, int], list[str]] = defaultdict(list)
    for drill in drills:
        if not drill.held:
            continue
        year = _aware(drill.startex, "startex").astimezone(DISPLAY_TZ).year
        for city in dict.fromkeys(drill.cities):
            held[(city, year)].append(drill.drill_id)
    keys = sorted(set(planned) | set(held), key=lambda key: (key[1], key[0]))
    return tuple(
        ProgrammeRow(
            city=city,
            year=year,
            planned=planned.get((city, year), 0),
            held=len(held.get((city, year), [])),
            drill_ids=tuple(held.get((city, year), [])),
            target_percent=target_percent,
        )
        for city, year in keys
    )
