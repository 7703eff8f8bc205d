"""Drill plans and MSEL injects: what each type holds by itself and against its drill."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.drills import (
    EXERCISE_PREFIX,
    AarNarrative,
    DrillContext,
    DrillPlan,
    DrillScope,
    DrillType,
    ExpectedAction,
    Inject,
    InjectChannel,
    Msel,
    ObjectiveAssessment,
    ObservationCreate,
    TaskRating,
    cross_row_problems,
    exercise_title,
)
from contracts.errors import ContractError, decode_data

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples" / "drills"
MEMBERS = frozenset(
    city["slug"]
    for city in json.loads((ROOT / "hub" / "data" / "huaihai_cities.json").read_text("utf-8"))["cities"]
)


def plan_data(**changes: Any) -> dict[str, Any]:
    data = json.loads((SAMPLES / "flood-tabletop.plan.json").read_text("utf-8"))
    data.update(changes)
    return data


def make_plan(**changes: Any) -> DrillPlan:
    return DrillPlan.model_validate(plan_data(**changes), context=DrillContext(member_cities=MEMBERS))


def inject_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": 1,
        "offset_s": 600,
        "city": "suqian",
        "channel": "bulletin",
        "message": "骆马湖水位超警戒，请签收。",
        "expected_action": "receipt_signed",
        "expected_within_s": 900,
        "objective": "O1",
        "critical_task": "1.1",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def errors_of(model: type, data: Any, context: DrillContext | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data, context=context)
    return [
        (".".join(str(part) for part in item["loc"]) or item.get("ctx", {}).get("field", ""), item["type"])
        for item in caught.value.errors()
    ]


@pytest.fixture
def context() -> DrillContext:
    return DrillContext.of_plan(make_plan(), member_cities=MEMBERS)


# Plan --------------------------------------------------------------------------------------------


def test_sample_plan_reads_and_round_trips() -> None:
    plan = make_plan()
    assert plan.drill_type is DrillType.TABLETOP
    assert plan.scope is DrillScope.COMBINED
    assert plan.duration_s == 3 * 3600
    assert DrillPlan.model_validate_json(plan.model_dump_json()) == plan


def test_plan_is_frozen_and_forbids_extra_fields() -> None:
    plan = make_plan()
    with pytest.raises(ValidationError):
        plan.name = "x"  # type: ignore[misc]
    assert ("priority", "extra_forbidden") in errors_of(DrillPlan, plan_data(priority="high"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"endex": "2025-07-15T08:00:00+08:00"}, ("", "endex_before_startex")),
        ({"endex": "2025-07-15T09:00:00+08:00"}, ("", "endex_before_startex")),
        ({"endex": "2025-08-01T09:00:00+08:00"}, ("", "drill_too_long")),
        ({"startex": "2025-07-15T09:00:00"}, ("startex", "timezone_aware")),
        ({"participating_cities": ["xuzhou", "xuzhou"]}, ("participating_cities", "duplicate")),
        ({"participating_cities": []}, ("participating_cities", "too_short")),
        ({"plans": []}, ("plans", "too_short")),
        ({"objectives": []}, ("objectives", "too_short")),
        ({"controllers": []}, ("controllers", "too_short")),
        ({"drill_type": "exercise"}, ("drill_type", "enum")),
        ({"schema_version": 2}, ("schema_version", "literal_error")),
    ],
)
def test_plan_refusals(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in errors_of(DrillPlan, plan_data(**changes))


def test_objective_refs_and_task_refs_are_unique() -> None:
    objectives = plan_data()["objectives"]
    twice = [objectives[0], {**objectives[1], "ref": "O1"}]
    assert ("objectives", "duplicate") in errors_of(DrillPlan, plan_data(objectives=twice))
    tasks = [{"ref": "1", "title": "a"}, {"ref": "1", "title": "b"}]
    one = [{"ref": "O1", "title": "t", "critical_tasks": tasks}]
    assert ("objectives.0.critical_tasks", "duplicate") in errors_of(DrillPlan, plan_data(objectives=one))


def test_member_cities_are_checked_when_known() -> None:
    context = DrillContext(member_cities=MEMBERS)
    data = plan_data(controlling_city="nanjing", participating_cities=["xuzhou", "beijing"])
    data["evaluators"] = [{"name": "x", "city": "shanghai"}]
    found = errors_of(DrillPlan, data, context)
    assert ("controlling_city", "unknown_city") in found
    assert ("participating_cities", "unknown_city") in found
    assert ("evaluators.0.city", "unknown_city") in found
    # Without members in the context the shape alone is checked.
    assert DrillPlan.model_validate(data).controlling_city == "nanjing"


def test_duplicate_staff_is_named() -> None:
    data = plan_data(controllers=[{"name": "王建国", "city": "xuzhou"}] * 2)
    with pytest.raises(ContractError, match=r"controller '王建国 \(xuzhou\)' is listed more than once"):
        decode_data(DrillPlan, data)


# Inject by itself ----------------------------------------------------------------------------------


def test_inject_reads_without_context() -> None:
    inject = Inject.model_validate(inject_data())
    assert inject.channel is InjectChannel.BULLETIN
    assert inject.expected_action is ExpectedAction.RECEIPT_SIGNED
    assert inject.device is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"channel": "fax"}, ("channel", "unknown_channel")),
        ({"expected_action": "salute"}, ("expected_action", "unknown_expected_action")),
        ({"offset_s": -1}, ("offset_s", "greater_than_equal")),
        ({"offset_s": "600"}, ("offset_s", "int_type")),
        ({"number": 0}, ("number", "greater_than_equal")),
        ({"number": 1.0}, ("number", "int_type")),
        ({"city": "Xuzhou"}, ("city", "string_pattern_mismatch")),
        ({"message": "   "}, ("message", "string_too_short")),
        ({"channel": "mqtt_vehicle", "expected_action": "command_acked"}, ("vehicle", "vehicle_required")),
        (
            {"channel": "mqtt_linkage", "expected_action": "command_acked"},
            ("linkage_system", "linkage_system_required"),
        ),
        ({"vehicle": "xz-cmd-01"}, ("vehicle", "vehicle_not_allowed")),
        ({"linkage_system": "xz-119"}, ("linkage_system", "linkage_system_not_allowed")),
        (
            {
                "channel": "mqtt_vehicle",
                "vehicle": "v1",
                "role": "值班员",
                "expected_action": "command_acked",
            },
            ("role", "role_not_allowed"),
        ),
        ({"expected_within_s": None}, ("expected_within_s", "incomplete_expectation")),
        ({"expected_action": None}, ("expected_action", "incomplete_expectation")),
        ({"expected_action": "command_acked"}, ("expected_action", "action_not_for_channel")),
        ({"channel": "mqtt_vehicle", "vehicle": "v1"}, ("expected_action", "action_not_for_channel")),
        ({"objective": None}, ("objective", "objective_required")),
        ({"contingency_of": 1}, ("contingency_of", "contingency_of_itself")),
        ({"expected_within_s": 0}, ("expected_within_s", "greater_than_equal")),
        ({"fax_number": "1"}, ("fax_number", "extra_forbidden")),
    ],
)
def test_inject_refusals_by_itself(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in errors_of(Inject, inject_data(**changes))


def test_device_injects_name_their_device() -> None:
    vehicle = Inject.model_validate(
        inject_data(channel="mqtt_vehicle", vehicle="xz-cmd-01", expected_action="command_acked")
    )
    assert vehicle.device == "xz-cmd-01"
    linkage = Inject.model_validate(
        inject_data(channel="mqtt_linkage", linkage_system="sq-119", **_no_action())
    )
    assert linkage.device == "sq-119"


def _no_action() -> dict[str, Any]:
    return {"expected_action": None, "expected_within_s": None}


def test_players_never_see_the_expected_action_or_the_notes() -> None:
    inject = Inject.model_validate(inject_data(evaluator_notes="看是否在 15 分钟内签收", controller="王建国"))
    shown = inject.for_players().model_dump()
    assert "expected_action" not in shown
    assert "evaluator_notes" not in shown
    assert "controller" not in shown
    assert shown["message"] == inject.message


# Inject against its drill -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"city": "heze"}, ("city", "unknown_target_city")),
        ({"objective": "O9"}, ("objective", "unknown_objective")),
        ({"critical_task": "2.1"}, ("critical_task", "unknown_critical_task")),
        ({"offset_s": 3 * 3600 + 1}, ("offset_s", "offset_after_endex")),
    ],
)
def test_inject_refusals_against_the_drill(
    context: DrillContext, changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in errors_of(Inject, inject_data(**changes), context)
    # The same inject passes its own checks: only the drill makes it wrong.
    Inject.model_validate(inject_data(**changes))


def test_offsets_at_startex_and_endex_are_inside(context: DrillContext) -> None:
    assert Inject.model_validate(inject_data(offset_s=0), context=context).offset_s == 0
    assert Inject.model_validate(inject_data(offset_s=3 * 3600), context=context).offset_s == 3 * 3600


# The list ------------------------------------------------------------------------------------------


def _inject(number: int, offset_s: int = 60, contingency_of: int | None = None) -> Inject:
    return Inject.model_validate(inject_data(number=number, offset_s=offset_s, contingency_of=contingency_of))


def test_msel_refuses_repeated_numbers_and_orphans() -> None:
    with pytest.raises(ValidationError, match="inject number 2 is already used on row 2"):
        Msel(injects=(_inject(1), _inject(2), _inject(2)))
    with pytest.raises(ValidationError, match="inject 9, of which this is a contingency, is not in the list"):
        Msel(injects=(_inject(1), _inject(2, contingency_of=9)))


def test_cross_row_problems_name_row_field_and_code() -> None:
    problems = cross_row_problems(
        [
            _inject(1, 600),
            _inject(2, 60, contingency_of=1),
            _inject(3, 900, contingency_of=4),
            _inject(4, 900, 3),
        ],
        rows=[2, 3, 4, 5],
    )
    found = {(p.row, p.field, p.code) for p in problems}
    assert found == {
        (3, "offset_s", "contingency_before_parent"),
        (4, "contingency_of", "contingency_circle"),
        (5, "contingency_of", "contingency_circle"),
    }


def test_contingency_chains_are_allowed() -> None:
    msel = Msel(
        injects=(_inject(1, 60), _inject(2, 120, contingency_of=1), _inject(3, 180, contingency_of=2))
    )
    assert [i.number for i in msel.ordered()] == [1, 2, 3]


def test_a_contingency_of_a_row_that_failed_is_not_an_orphan() -> None:
    problems = cross_row_problems([_inject(2, contingency_of=1)], other_numbers=[1])
    assert problems == []


def test_msel_orders_injects_by_offset_then_number() -> None:
    msel = Msel(injects=(_inject(3, 60), _inject(1, 120), _inject(2, 60)))
    assert [i.number for i in msel.ordered()] == [2, 3, 1]
    assert set(msel.by_number()) == {1, 2, 3}


# Small things -----------------------------------------------------------------------------------


def test_exercise_title_is_prefixed_once() -> None:
    assert exercise_title("骆马湖水位超警戒") == f"{EXERCISE_PREFIX}骆马湖水位超警戒"
    assert exercise_title(exercise_title("x")) == f"{EXERCISE_PREFIX}x"


@pytest.mark.parametrize("enum", [DrillType, DrillScope, InjectChannel, ExpectedAction, TaskRating])
def test_every_value_has_a_chinese_label(enum: Any) -> None:
    labels = [member.label_zh for member in enum]
    assert all(labels) and len(set(labels)) == len(labels)


def test_observation_rates_a_named_critical_task() -> None:
    at = datetime(2025, 7, 15, 1, 30).astimezone()
    observation = ObservationCreate(
        objective="O1", critical_task="1.1", rating="S", text="签收迟了 3 分钟", observed_at=at
    )
    assert observation.rating is TaskRating.SOME_CHALLENGES
    with pytest.raises(ValidationError, match="a rating is for a critical task"):
        ObservationCreate(objective="O1", rating="P", text="好", observed_at=at)
    with pytest.raises(ValidationError, match="a critical task is given with its objective"):
        ObservationCreate(critical_task="1.1", text="好", observed_at=at + timedelta(minutes=1))


def test_sample_aar_narrative_reads_and_keeps_what_was_said() -> None:
    narrative = AarNarrative.model_validate_json((SAMPLES / "flood-tabletop.aar.json").read_text("utf-8"))
    assert [o.rating for o in narrative.objectives] == [
        TaskRating.SOME_CHALLENGES,
        TaskRating.MAJOR_CHALLENGES,
    ]
    assert AarNarrative.model_validate_json(narrative.model_dump_json()) == narrative
    blank = ObjectiveAssessment(objective="O3")
    stored = narrative.model_copy(update={"objectives": (*narrative.objectives, blank)}).content()
    assert [o["objective"] for o in stored["objectives"]] == ["O1", "O2"]  # nothing said of O3
    assert "base_revision" not in stored


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"summary": "夜间\u0000值班"}, r"U\+0000"),
        ({"base_revision": -1}, "greater than or equal to 0"),
        ({"base_revision": "1"}, "valid integer"),
        ({"objectives": [{"objective": "O1"}, {"objective": "O1"}]}, "listed more than once"),
        ({"objectives": [{"objective": "O1", "rating": "X"}]}, "rating"),
        ({"signed": True}, "Extra inputs"),
    ],
)
def test_aar_narrative_refusals(changes: dict[str, Any], expected: str) -> None:
    data = {**json.loads((SAMPLES / "flood-tabletop.aar.json").read_text("utf-8")), **changes}
    with pytest.raises(ValidationError, match=expected):
        AarNarrative.model_validate(data)
