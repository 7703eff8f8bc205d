"""Joint drills (联合演练): the drill plan and its master scenario events list (MSEL).

A drill plan says what is exercised (the plans, 预案), by whom (a controlling city, participating
cities, controllers, evaluators), what for (objectives, each with critical tasks, as in an HSEEP
exercise evaluation guide) and when (STARTEX and ENDEX). The MSEL is the list of injects: numbered
rows, each delivered to one target at an offset from STARTEX through one of the hub's live channels,
with the action expected of the target and the time it is expected within.

Validation comes in three layers:

- what an inject or a plan knows about itself is in its type (a vehicle inject names a vehicle, a
  contingency is not its own parent, ENDEX follows STARTEX);
- what an MSEL knows about its rows is in `Msel` (numbers unique, contingencies point to an inject
  of the list and never in a circle);
- what needs the drill around it (its participating cities, its objectives, the STARTEX..ENDEX
  window; the member cities for a plan) is checked when a `DrillContext` is passed as pydantic's
  validation context: `Inject.model_validate(data, context=DrillContext.of_plan(plan))`. The
  importers in `contracts.msel` always pass one; a model built by hand without it is checked only
  as far as the first two layers go.

Refusals carry a stable `code` (the pydantic error type, or `MselProblem.code`) and plain English
text; the web layer translates by code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from contracts.common import CitySlug, XmlChars
from contracts.errors import Problem

EXERCISE_PREFIX = "【演练】"
"""The prefix every title of exercise traffic carries, on every channel (Chinese practice)."""

# A drill that runs longer than two weeks is a campaign, not an exercise; the bound also keeps an
# offset typed in milliseconds by mistake from being accepted as a date years away.
MAX_DRILL_DURATION = timedelta(days=14)
MAX_DRILL_SECONDS = int(MAX_DRILL_DURATION.total_seconds())
# The largest MSEL the hub accepts: ten cities times a few hundred injects is already a week of play.
MAX_INJECTS = 2000
MAX_INJECT_NUMBER = 99_999
# An expected action is measured in seconds to hours; a day is the longest sensible wait.
MAX_EXPECTED_WITHIN_S = 86_400


class DrillType(StrEnum):
    """How a drill is played: at the table, or with real actions of part or all of the response."""

    TABLETOP = "tabletop"
    FUNCTIONAL = "functional"
    FULL_SCALE = "full_scale"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name planners use."""
        return _DRILL_TYPE_ZH[self]


_DRILL_TYPE_ZH = {
    DrillType.TABLETOP: "桌面推演",
    DrillType.FUNCTIONAL: "功能演练",
    DrillType.FULL_SCALE: "全面演练",
}


class DrillScope(StrEnum):
    """Whether a drill exercises one function (单项) or several together (综合)."""

    SINGLE = "single"
    COMBINED = "combined"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name planners use."""
        return _SCOPE_ZH[self]


_SCOPE_ZH = {DrillScope.SINGLE: "单项演练", DrillScope.COMBINED: "综合演练"}


class InjectChannel(StrEnum):
    """The live channel an inject travels through; drills use the same pipes as real work."""

    DESK_NOTICE = "desk_notice"
    BULLETIN = "bulletin"
    WARNING = "warning"
    PARTNER_PLATFORM = "partner_platform"
    MQTT_VEHICLE = "mqtt_vehicle"
    MQTT_LINKAGE = "mqtt_linkage"
    CAP = "cap"
    INCIDENT = "incident"
    AID_REQUEST = "aid_request"
    CONSULTATION_CALL = "consultation_call"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the channel."""
        return _CHANNEL_ZH[self]

    @property
    def over_mqtt(self) -> bool:
        """Return whether the inject goes to a device (vehicle or linkage system), not to people."""
        return self in (InjectChannel.MQTT_VEHICLE, InjectChannel.MQTT_LINKAGE)


_CHANNEL_ZH = {
    InjectChannel.DESK_NOTICE: "值班通知",
    InjectChannel.BULLETIN: "信息通报",
    InjectChannel.WARNING: "预警信息",
    InjectChannel.PARTNER_PLATFORM: "城市平台",
    InjectChannel.MQTT_VEHICLE: "移动指挥车",
    InjectChannel.MQTT_LINKAGE: "联动系统",
    InjectChannel.CAP: "CAP预警",
    InjectChannel.INCIDENT: "突发事件",
    InjectChannel.AID_REQUEST: "支援请求",
    InjectChannel.CONSULTATION_CALL: "会商通知",
}


class ExpectedAction(StrEnum):
    """What the target is expected to do; each is an action the hub records with its time."""

    NOTICE_READ = "notice_read"
    RECEIPT_SIGNED = "receipt_signed"
    REPORT_FILED = "report_filed"
    AID_REQUESTED = "aid_requested"
    CONSULTATION_CALLED = "consultation_called"
    COMMAND_ACKED = "command_acked"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the action."""
        return _ACTION_ZH[self]


_ACTION_ZH = {
    ExpectedAction.NOTICE_READ: "阅知",
    ExpectedAction.RECEIPT_SIGNED: "签收回执",
    ExpectedAction.REPORT_FILED: "报送信息",
    ExpectedAction.AID_REQUESTED: "提出支援请求",
    ExpectedAction.CONSULTATION_CALLED: "发起会商",
    ExpectedAction.COMMAND_ACKED: "指令确认",
}


class TaskRating(StrEnum):
    """An evaluator's rating of a critical task (HSEEP's P/S/M/U)."""

    PERFORMED = "P"
    SOME_CHALLENGES = "S"
    MAJOR_CHALLENGES = "M"
    UNABLE = "U"

    @property
    def label_zh(self) -> str:
        """Return the Chinese wording of the rating."""
        return _RATING_ZH[self]


_RATING_ZH = {
    TaskRating.PERFORMED: "顺利完成",
    TaskRating.SOME_CHALLENGES: "基本完成，存在一些问题",
    TaskRating.MAJOR_CHALLENGES: "勉强完成，存在重大问题",
    TaskRating.UNABLE: "未能完成",
}


def exercise_title(title: str) -> str:
    """Return `title` with the exercise prefix, once, as every channel must show it."""
    return title if title.startswith(EXERCISE_PREFIX) else f"{EXERCISE_PREFIX}{title}"


# Context ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrillContext:
    """What validation needs to know about the drill around a plan or an inject.

    Each part is optional; a part left as None is not checked. `city_aliases` maps what planners
    type in a spreadsheet ("徐州市", "徐州") to a slug; only the CSV importer reads it.
    """

    member_cities: frozenset[str] | None = None
    participating_cities: frozenset[str] | None = None
    objectives: Mapping[str, frozenset[str]] | None = None
    duration_s: int | None = None
    city_aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_plan(
        cls,
        plan: DrillPlan,
        *,
        member_cities: Iterable[str] | None = None,
        city_aliases: Mapping[str, str] | None = None,
    ) -> DrillContext:
        """Return the context that an MSEL of `plan` is checked against."""
        return cls(
            member_cities=frozenset(member_cities) if member_cities is not None else None,
            participating_cities=frozenset(plan.participating_cities),
            objectives={o.ref: frozenset(t.ref for t in o.critical_tasks) for o in plan.objectives},
            duration_s=plan.duration_s,
            city_aliases=dict(city_aliases or {}),
        )


def _context(info: ValidationInfo) -> DrillContext | None:
    return info.context if isinstance(info.context, DrillContext) else None


def _check_member(city: str, info: ValidationInfo) -> str:
    context = _context(info)
    if context is not None and context.member_cities is not None and city not in context.member_cities:
        raise PydanticCustomError("unknown_city", "'{city}' is not a member city", {"city": city})
    return city


# Small types -----------------------------------------------------------------------------------

Ref = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")]
"""A short reference planners give an objective or a critical task: "O1", "O1.2", "T3"."""
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(text: str) -> str:
    # A NUL cannot be stored in a PostgreSQL text column, and other control characters in a
    # spreadsheet cell are debris; refuse them here rather than fail the insert later.
    if _CONTROL_RE.search(text):
        raise PydanticCustomError("control_character", "the text contains a control character")
    return text


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_printable)
]
Short = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_printable)
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), AfterValidator(_printable)
]
Narrative = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=10_000), AfterValidator(_printable)
]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""A vehicle's or linkage system's id, the same rule as `contracts.mqtt.DeviceId`."""
# Strict: a JSON "7" or 7.5 as an inject number is a mistake in whatever produced the file.
Seconds = Annotated[int, Strict(), Field(ge=0, le=MAX_DRILL_SECONDS)]


def _distinct_by(what: str, key: str) -> Any:
    def check(items: tuple[Any, ...]) -> tuple[Any, ...]:
        seen: set[Any] = set()
        for item in items:
            value = getattr(item, key) if key else item
            if value in seen:
                raise PydanticCustomError(
                    "duplicate",
                    "{what} '{value}' is listed more than once",
                    {"what": what, "value": str(value)},
                )
            seen.add(value)
        return items

    return AfterValidator(check)


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CriticalTask(_Contract):
    """A task the objective cannot be met without; evaluators rate each one."""

    ref: Ref
    title: Name


class Objective(_Contract):
    """What the drill sets out to show, with the critical tasks that show it."""

    ref: Ref
    title: Name
    critical_tasks: Annotated[
        tuple[CriticalTask, ...], Field(min_length=1, max_length=50), _distinct_by("critical task", "ref")
    ]


class StaffMember(_Contract):
    """A controller or evaluator: a person's name (or hub user name) and their city."""

    name: Short
    city: CitySlug

    @field_validator("city")
    @classmethod
    def _is_member(cls, city: str, info: ValidationInfo) -> str:
        """Refuse a city that is not a member city (when the members are known)."""
        return _check_member(city, info)

    def __str__(self) -> str:
        """Render as `name (city)`, as refusals name a person."""
        return f"{self.name} ({self.city})"


class DrillPlan(_Contract):
    """A joint drill as planned: what it exercises, who takes part, its objectives and its window."""

    schema_version: Literal[1] = 1
    name: Name
    drill_type: DrillType
    scope: DrillScope
    scenario: Narrative = ""
    # Which plans (预案) the drill exercises: the programme links drills to plans (S7).
    plans: Annotated[tuple[Name, ...], Field(min_length=1, max_length=20), _distinct_by("plan", "")]
    controlling_city: CitySlug
    participating_cities: Annotated[
        tuple[CitySlug, ...], Field(min_length=1, max_length=50), _distinct_by("city", "")
    ]
    objectives: Annotated[
        tuple[Objective, ...], Field(min_length=1, max_length=50), _distinct_by("objective", "ref")
    ]
    startex: AwareDatetime
    endex: AwareDatetime
    controllers: Annotated[
        tuple[StaffMember, ...], Field(min_length=1, max_length=100), _distinct_by("controller", "")
    ]
    evaluators: Annotated[tuple[StaffMember, ...], Field(max_length=100), _distinct_by("evaluator", "")] = ()

    @field_validator("controlling_city")
    @classmethod
    def _controlling_is_member(cls, city: str, info: ValidationInfo) -> str:
        """Refuse a controlling city that is not a member city (when the members are known)."""
        return _check_member(city, info)

    @field_validator("participating_cities")
    @classmethod
    def _participants_are_members(cls, cities: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Refuse a participating city that is not a member city (when the members are known)."""
        for city in cities:
            _check_member(city, info)
        return cities

    @model_validator(mode="after")
    def _window(self) -> Self:
        """Refuse an ENDEX that is not after STARTEX, or a drill longer than two weeks."""
        if self.endex <= self.startex:
            raise PydanticCustomError("endex_before_startex", "endex must be after startex")
        if self.endex - self.startex > MAX_DRILL_DURATION:
            raise PydanticCustomError("drill_too_long", "a drill lasts at most 14 days from startex to endex")
        return self

    @property
    def duration_s(self) -> int:
        """Return the seconds from STARTEX to ENDEX (scenario time)."""
        return int((self.endex - self.startex).total_seconds())


def _enum_reader(enum: type[StrEnum], code: str, what: str) -> BeforeValidator:
    def read(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        if isinstance(value, str) and value in enum._value2member_map_:
            return enum(value)
        raise PydanticCustomError(code, "unknown {what} '{value}'", {"what": what, "value": value})

    return BeforeValidator(read)


Channel = Annotated[InjectChannel, _enum_reader(InjectChannel, "unknown_channel", "channel")]
Action = Annotated[ExpectedAction, _enum_reader(ExpectedAction, "unknown_expected_action", "expected action")]


class Inject(_Contract):
    """One MSEL row: a message delivered to one target at an offset from STARTEX.

    The target is a city's duty desk (with a role, when it is for one position), or one of the
    city's vehicles for `mqtt_vehicle`, or one of its linkage systems for `mqtt_linkage`. A
    contingency inject (`contingency_of`) is held back and played only when released, typically
    when its parent's expected action has not come in time. `expected_action` and
    `evaluator_notes` are for controllers and evaluators: players must not see them before ENDEX
    (`PlayerInject` is what they see).
    """

    number: Annotated[int, Strict(), Field(ge=1, le=MAX_INJECT_NUMBER)]
    offset_s: Seconds
    city: CitySlug
    role: Short | None = None
    vehicle: DeviceId | None = None
    linkage_system: DeviceId | None = None
    channel: Channel
    message: Text
    expected_action: Action | None = None
    expected_within_s: Annotated[int, Strict(), Field(ge=1, le=MAX_EXPECTED_WITHIN_S)] | None = None
    objective: Ref | None = None
    critical_task: Ref | None = None
    contingency_of: Annotated[int, Strict(), Field(ge=1, le=MAX_INJECT_NUMBER)] | None = None
    controller: Short | None = None
    evaluator_notes: Text | None = None

    @field_validator("offset_s")
    @classmethod
    def _before_endex(cls, offset: int, info: ValidationInfo) -> int:
        """Refuse an offset past ENDEX (when the drill's window is known)."""
        context = _context(info)
        if context is not None and context.duration_s is not None and offset > context.duration_s:
            raise PydanticCustomError(
                "offset_after_endex",
                "offset {offset} s is after endex ({duration} s from startex)",
                {"offset": offset, "duration": context.duration_s},
            )
        return offset

    @field_validator("city")
    @classmethod
    def _participates(cls, city: str, info: ValidationInfo) -> str:
        """Refuse a target city that does not take part in the drill (when the drill is known)."""
        context = _context(info)
        known = context.participating_cities if context is not None else None
        if known is not None and city not in known:
            raise PydanticCustomError(
                "unknown_target_city", "city '{city}' does not take part in the drill", {"city": city}
            )
        return city

    @field_validator("objective")
    @classmethod
    def _objective_exists(cls, ref: str | None, info: ValidationInfo) -> str | None:
        """Refuse a reference to an objective the drill does not have."""
        context = _context(info)
        known = context.objectives if context is not None else None
        if ref is not None and known is not None and ref not in known:
            raise PydanticCustomError("unknown_objective", "the drill has no objective '{ref}'", {"ref": ref})
        return ref

    @field_validator("critical_task")
    @classmethod
    def _task_exists(cls, ref: str | None, info: ValidationInfo) -> str | None:
        """Refuse a critical task that its objective does not have."""
        context = _context(info)
        objective = info.data.get("objective")
        if ref is None or objective is None or context is None or context.objectives is None:
            return ref
        if ref not in context.objectives.get(objective, frozenset()):
            raise PydanticCustomError(
                "unknown_critical_task",
                "objective '{objective}' has no critical task '{ref}'",
                {"objective": objective, "ref": ref},
            )
        return ref

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a target that does not fit the channel, and half an expectation."""
        for code, message, field_name in self._inconsistencies():
            # The field goes into the error's context: an after-validator's error has no location
            # of its own, and the importers name the field in every refusal.
            raise PydanticCustomError(code, message, {"field": field_name})
        return self

    def _inconsistencies(self) -> Iterable[tuple[str, str, str]]:
        channel = self.channel
        if channel is InjectChannel.MQTT_VEHICLE and self.vehicle is None:
            yield "vehicle_required", "an mqtt_vehicle inject names its vehicle", "vehicle"
        if channel is InjectChannel.MQTT_LINKAGE and self.linkage_system is None:
            yield (
                "linkage_system_required",
                "an mqtt_linkage inject names its linkage system",
                "linkage_system",
            )
        if self.vehicle is not None and channel is not InjectChannel.MQTT_VEHICLE:
            yield "vehicle_not_allowed", "only an mqtt_vehicle inject names a vehicle", "vehicle"
        if self.linkage_system is not None and channel is not InjectChannel.MQTT_LINKAGE:
            yield (
                "linkage_system_not_allowed",
                "only an mqtt_linkage inject names a linkage system",
                "linkage_system",
            )
        if self.role is not None and channel.over_mqtt:
            yield "role_not_allowed", "an inject to a device has no role", "role"
        if (self.expected_action is None) != (self.expected_within_s is None):
            missing = "expected_within_s" if self.expected_within_s is None else "expected_action"
            yield (
                "incomplete_expectation",
                "give both expected_action and expected_within_s, or neither",
                missing,
            )
        if channel.over_mqtt and self.expected_action not in (None, ExpectedAction.COMMAND_ACKED):
            yield "action_not_for_channel", "a device can only acknowledge (command_acked)", "expected_action"
        if self.expected_action is ExpectedAction.COMMAND_ACKED and not channel.over_mqtt:
            yield (
                "action_not_for_channel",
                "command_acked is expected only of injects to vehicles or linkage systems",
                "expected_action",
            )
        if self.critical_task is not None and self.objective is None:
            yield "objective_required", "a critical task is given with its objective", "objective"
        if self.contingency_of == self.number:
            yield "contingency_of_itself", "an inject cannot be a contingency of itself", "contingency_of"

    @property
    def device(self) -> str | None:
        """Return the vehicle or linkage system the inject goes to, None for a city's desk."""
        return self.vehicle or self.linkage_system

    def for_players(self) -> PlayerInject:
        """Return what the target's players may see before ENDEX."""
        return PlayerInject(
            number=self.number,
            city=self.city,
            role=self.role,
            vehicle=self.vehicle,
            linkage_system=self.linkage_system,
            channel=self.channel,
            message=self.message,
        )


class PlayerInject(_Contract):
    """An inject as players see it during play: no expected action, no evaluator notes."""

    schema_version: Literal[1] = 1
    number: int
    city: CitySlug
    role: Short | None = None
    vehicle: DeviceId | None = None
    linkage_system: DeviceId | None = None
    channel: InjectChannel
    message: Text


@dataclass(frozen=True, slots=True)
class MselProblem(Problem):
    """A `Problem` on one MSEL row, with what a translator needs: a code and its parameters.

    `row` is the CSV row (the header is row 1, as a spreadsheet counts) or the 1-based position of
    the inject in a JSON list; None for the document as a whole. `field` is the column or field
    name, empty for the whole row.
    """

    row: int | None
    field: str
    code: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def params_dict(self) -> dict[str, str]:
        """Return the parameters as a dict, for a translated message's placeholders."""
        return dict(self.params)


def msel_problem(
    row: int | None, field_name: str, code: str, message: str, location: str = "", **params: Any
) -> MselProblem:
    """Build a `MselProblem`, with "row N, field" as its location unless one is given."""
    if not location:
        parts = [f"row {row}"] if row is not None else []
        parts += [field_name] if field_name else []
        location = ", ".join(parts)
    return MselProblem(
        location=location,
        message=message,
        row=row,
        field=field_name,
        code=code,
        params=tuple((key, str(value)) for key, value in params.items()),
    )


def cross_row_problems(
    injects: Sequence[Inject],
    rows: Sequence[int] | None = None,
    *,
    other_numbers: Iterable[int] = (),
    field_names: Mapping[str, str] | None = None,
) -> list[MselProblem]:
    """List what is wrong between rows: repeated numbers, contingencies of unknown or later injects,
    contingency circles.

    `rows[i]` is the row to name for `injects[i]` (default: its position from 1); `other_numbers`
    are numbers of rows that failed on their own, so that their contingencies are not reported as
    orphans too; `field_names` renames fields to the caller's column names.
    """
    rows = list(rows) if rows is not None else list(range(1, len(injects) + 1))
    names = field_names or {}
    problems: list[MselProblem] = []
    first_row: dict[int, int] = {}
    by_number: dict[int, Inject] = {}
    for inject, row in zip(injects, rows, strict=True):
        if inject.number in first_row:
            problems.append(
                msel_problem(
                    row,
                    names.get("number", "number"),
                    "duplicate_number",
                    f"inject number {inject.number} is already used on row {first_row[inject.number]}",
                    number=inject.number,
                    first_row=first_row[inject.number],
                )
            )
            continue
        first_row[inject.number] = row
        by_number[inject.number] = inject
    known = set(by_number) | set(other_numbers)
    field_name = names.get("contingency_of", "contingency_of")
    for inject, row in zip(injects, rows, strict=True):
        parent_number = inject.contingency_of
        if parent_number is None or by_number.get(inject.number) is not inject:
            continue
        if parent_number not in known:
            problems.append(
                msel_problem(
                    row,
                    field_name,
                    "unknown_contingency_parent",
                    f"inject {parent_number}, of which this is a contingency, is not in the list",
                    parent=parent_number,
                )
            )
            continue
        parent = by_number.get(parent_number)
        if parent is not None and inject.offset_s < parent.offset_s:
            problems.append(
                msel_problem(
                    row,
                    names.get("offset_s", "offset_s"),
                    "contingency_before_parent",
                    f"a contingency cannot come before inject {parent_number}, which it stands in for",
                    parent=parent_number,
                )
            )
        if _in_circle(inject.number, by_number):
            problems.append(
                msel_problem(
                    row,
                    field_name,
                    "contingency_circle",
                    f"inject {inject.number} is, through its contingencies, a contingency of itself",
                    number=inject.number,
                )
            )
    return problems


def _in_circle(number: int, by_number: Mapping[int, Inject]) -> bool:
    seen = {number}
    current = by_number[number].contingency_of
    while current is not None and current in by_number:
        if current in seen:
            return current == number
        seen.add(current)
        current = by_number[current].contingency_of
    return False


class Msel(_Contract):
    """A drill's master scenario events list: its injects, in the order the planners wrote them."""

    schema_version: Literal[1] = 1
    injects: Annotated[tuple[Inject, ...], Field(max_length=MAX_INJECTS)]

    @model_validator(mode="after")
    def _rows_agree(self) -> Self:
        """Refuse repeated numbers and contingencies that do not point to an earlier-or-equal inject."""
        problems = cross_row_problems(self.injects)
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        return self

    def by_number(self) -> dict[int, Inject]:
        """Return the injects by number."""
        return {inject.number: inject for inject in self.injects}

    def ordered(self) -> tuple[Inject, ...]:
        """Return the injects in play order: by offset, then number."""
        return tuple(sorted(self.injects, key=lambda inject: (inject.offset_s, inject.number)))


class ObservationCreate(_Contract):
    """What an evaluator records during or after play: an observation on a critical task."""

    objective: Ref | None = None
    critical_task: Ref | None = None
    rating: TaskRating | None = None
    text: Text
    observed_at: AwareDatetime

    @model_validator(mode="after")
    def _task_needs_objective(self) -> Self:
        """Refuse a critical task without its objective, and a rating of nothing in particular."""
        if self.critical_task is not None and self.objective is None:
            raise ValueError("a critical task is given with its objective")
        if self.rating is not None and self.critical_task is None:
            raise ValueError("a rating is for a critical task; name it")
        return self


class CorrectiveActionCreate(_Contract):
    """A corrective action (纠正行动) a drill showed: one owner city, a due day, and the plan
    (预案) it revises, as AQ/T 9009's evaluation ends and S7 asks (owner and deadline)."""

    schema_version: Literal[1] = 1
    owner_city: CitySlug
    title: Name
    detail: Narrative = ""
    # A calendar day in Asia/Shanghai; the action item is on time when closed that day or before.
    due_on: date
    # One of the drill's plans: the revision it asks for.
    plan: Name
    # The objective whose area for improvement it answers, when it answers one.
    objective: Ref | None = None


class HotwashCreate(_Contract):
    """A player's hot wash (参演人员自评) right after ENDEX: how their city did, what went well,
    what to improve; short, so that it is filled while the drill is fresh."""

    schema_version: Literal[1] = 1
    self_rating: Annotated[int, Strict(), Field(ge=1, le=5)]
    went_well: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        AfterValidator(_printable),
    ]
    to_improve: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        AfterValidator(_printable),
    ]


AarText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000), XmlChars]
"""A narrative part of the after-action report: free text, may be empty while the draft grows."""


class ObjectiveAssessment(_Contract):
    """The lead evaluator's assessment of one objective (HSEEP's AAR analysis by objective): the
    rating of how it was performed, its strengths and its areas for improvement."""

    objective: Ref
    rating: TaskRating | None = None
    strengths: AarText = ""
    improvements: AarText = ""

    @property
    def is_blank(self) -> bool:
        """Whether nothing was said about the objective."""
        return self.rating is None and not self.strengths and not self.improvements


class AarNarrative(_Contract):
    """The narrative the evaluators write around the drafted figures of the after-action report:
    a summary and, per objective, a rating, strengths and areas for improvement.

    `base_revision` is the revision the editor started from (0 for the first save), so a save
    made over someone else's newer revision is refused instead of silently replacing it.
    """

    schema_version: Literal[1] = 1
    base_revision: Annotated[int, Strict(), Field(ge=0)]
    summary: AarText = ""
    objectives: Annotated[
        tuple[ObjectiveAssessment, ...], Field(max_length=50), _distinct_by("objective", "objective")
    ] = ()

    def content(self) -> dict[str, Any]:
        """Return what a revision stores: the text without the editor's base revision; objectives
        about which nothing was said are left out."""
        return {
            "summary": self.summary,
            "objectives": [o.model_dump(mode="json") for o in self.objectives if not o.is_blank],
        }
