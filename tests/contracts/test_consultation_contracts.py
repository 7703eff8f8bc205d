"""The consultation and conference contracts: samples decode, invariants live in the types."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from contracts.consultations import (
    ActionItem,
    ActionItemClose,
    ActionItemCreate,
    ActionItemProgress,
    ActionItemReopen,
    ActionItemState,
    AgendaItemSubmission,
    Answer,
    ConferenceBody,
    ConsultationCall,
    DecisionMode,
    Evidence,
    InvitationAnswer,
    MeetingKind,
    MinutesRevision,
    Quorum,
    Resolution,
)
from contracts.errors import ContractError, decode_data, decode_json

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "consultations"
CITIES = [
    city["slug"]
    for city in json.loads(
        (Path(__file__).resolve().parents[2] / "hub" / "data" / "huaihai_cities.json").read_text("utf-8")
    )["cities"]
]

MODELS: dict[str, type[BaseModel]] = {
    "consultation-call": ConsultationCall,
    "invitation-answer": InvitationAnswer,
    "agenda-item-submission": AgendaItemSubmission,
    "minutes-revision": MinutesRevision,
    "resolution": Resolution,
    "action-item-progress": ActionItemProgress,
    "action-item-close": ActionItemClose,
    "action-item-reopen": ActionItemReopen,
    "conference-body": ConferenceBody,
}

INVALID = {
    "invitation-answer.delegate-without-name.json": "names the delegate",
    "resolution.follow-up-without-items.json": "opens at least one action item",
    "conference-body.stranger-in-rotation.json": "rotation_order lists every member city once",
    "action-item-close.no-evidence.json": "evidence.note: String should have at least 1 character",
    "consultation-call.naive-start.json": "starts_at: Input should have timezone info",
}


def _model(path: Path) -> type[BaseModel]:
    return MODELS[path.name.split(".", 1)[0]]


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_valid_sample_decodes_and_round_trips(path: Path) -> None:
    decoded = decode_json(_model(path), path.read_bytes())
    assert decode_json(_model(path), decoded.model_dump_json()) == decoded


def test_every_model_has_a_sample() -> None:
    covered = {path.name.split(".", 1)[0] for path in SAMPLES.glob("*.json")}
    assert covered == set(MODELS)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_sample_is_refused_for_its_reason(name: str) -> None:
    path = SAMPLES / "invalid" / name
    with pytest.raises(ContractError) as error:
        decode_json(_model(path), path.read_bytes())
    assert INVALID[name] in str(error.value)


def test_every_invalid_sample_has_an_expectation() -> None:
    assert {path.name for path in (SAMPLES / "invalid").glob("*.json")} == set(INVALID)


def test_sample_body_rotates_through_the_ten_cities() -> None:
    body = decode_json(ConferenceBody, (SAMPLES / "conference-body.json").read_bytes())
    assert sorted(body.rotation_order) == sorted(CITIES)
    assert body.meeting_time == time(9, 0)


def _call(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": "会商",
        "starts_at": "2026-07-12T15:00:00+08:00",
        "invited_cities": ["linyi", "xuzhou"],
    }
    data.update(changes)
    return data


def test_call_without_incident_or_video_is_fine_and_defaults_to_live() -> None:
    call = decode_data(ConsultationCall, _call())
    assert call.incident_id is None and call.video_link is None
    assert call.exercise is False and call.duration_minutes == 60


@pytest.mark.parametrize("link", ["https://v.example.cn/r/1", "sip:room8831@video.linyi.gov.cn"])
def test_call_accepts_web_and_sip_video_links(link: str) -> None:
    assert decode_data(ConsultationCall, _call(video_link=link)).video_link == link


@pytest.mark.parametrize("link", ["javascript:alert(1)", "ftp://x/y", "room 3"])
def test_call_refuses_other_links(link: str) -> None:
    with pytest.raises(ContractError, match="video_link"):
        decode_data(ConsultationCall, _call(video_link=link))


def test_call_refuses_repeated_cities_and_specialities_and_a_string_exercise_flag() -> None:
    with pytest.raises(ContractError, match="listed more than once"):
        decode_data(ConsultationCall, _call(invited_cities=["linyi", "linyi"]))
    with pytest.raises(ContractError, match="listed more than once"):
        decode_data(ConsultationCall, _call(expert_specialities=["水利", "水利"]))
    with pytest.raises(ContractError, match="exercise"):
        decode_data(ConsultationCall, _call(exercise="true"))
    with pytest.raises(ContractError, match="invited_cities"):
        decode_data(ConsultationCall, _call(invited_cities=[]))


def test_answer_names_a_delegate_only_when_delegating() -> None:
    assert (
        decode_data(InvitationAnswer, {"answer": "delegate", "delegate_name": " 王 "}).delegate_name == "王"
    )
    with pytest.raises(ContractError, match="only when the answer is 'delegate'"):
        decode_data(InvitationAnswer, {"answer": "accept", "delegate_name": "王"})
    with pytest.raises(ContractError, match="answer"):
        decode_data(InvitationAnswer, {"answer": "maybe"})


def test_answer_maps_to_icalendar_partstat_and_attendance() -> None:
    assert [a.partstat for a in Answer] == ["ACCEPTED", "DECLINED", "DELEGATED"]
    assert [a.attends for a in Answer] == [True, False, True]


def test_resolution_votes_match_the_mode() -> None:
    with pytest.raises(ContractError, match="consensus carries no votes"):
        decode_data(
            Resolution,
            {"text": "x", "decision_mode": "consensus", "votes": [{"city": "linyi", "vote": "approve"}]},
        )
    with pytest.raises(ContractError, match="carries the cities' votes"):
        decode_data(Resolution, {"text": "x", "decision_mode": "vote"})
    with pytest.raises(ContractError, match="a city votes once"):
        decode_data(
            Resolution,
            {
                "text": "x",
                "decision_mode": "vote",
                "votes": [{"city": "linyi", "vote": "approve"}, {"city": "linyi", "vote": "reject"}],
            },
        )


def test_resolution_action_items_only_with_follow_up() -> None:
    item = {"owner_city": "linyi", "title": "巡查", "due_on": "2026-05-31"}
    with pytest.raises(ContractError, match="marked follow_up"):
        decode_data(Resolution, {"text": "x", "decision_mode": "consensus", "action_items": [item]})
    adopted = decode_data(
        Resolution, {"text": "x", "decision_mode": "consensus", "follow_up": True, "action_items": [item]}
    )
    assert adopted.decision_mode is DecisionMode.CONSENSUS
    assert adopted.action_items[0].due_on == date(2026, 5, 31)


def test_action_item_needs_exactly_one_owner_city_and_a_due_date() -> None:
    with pytest.raises(ContractError, match="due_on: required but missing"):
        decode_data(ActionItemCreate, {"owner_city": "linyi", "title": "巡查"})
    with pytest.raises(ContractError, match="owner_city"):
        decode_data(
            ActionItemCreate, {"owner_city": ["linyi", "xuzhou"], "title": "巡查", "due_on": "2026-05-31"}
        )


def test_closed_action_item_carries_its_evidence() -> None:
    base = {
        "id": str(uuid4()),
        "owner_city": "linyi",
        "title": "巡查",
        "due_on": "2026-05-31",
        "opened_at": "2026-05-01T09:00:00+08:00",
    }
    with pytest.raises(ContractError, match="closed_at and evidence"):
        decode_data(ActionItem, {**base, "state": "closed"})
    closed = ActionItem(
        **base,
        state=ActionItemState.CLOSED,
        closed_at=datetime(2026, 5, 30, tzinfo=UTC),
        evidence=Evidence(note="done"),
    )
    assert not closed.state.is_open
    assert ActionItemState.REOPENED.is_open


def test_body_dates_and_quorum_are_checked() -> None:
    body = {
        "name": "联席会议",
        "member_cities": ["xuzhou", "linyi"],
        "rotation_order": ["linyi", "xuzhou"],
        "first_host": "linyi",
        "first_meeting_on": "2026-06-18",
    }
    assert decode_data(ConferenceBody, body).quorum == Quorum()
    with pytest.raises(ContractError, match="day 1 to 28"):
        decode_data(ConferenceBody, {**body, "first_meeting_on": "2026-01-31"})
    with pytest.raises(ContractError, match="first_host is one of the rotation"):
        decode_data(ConferenceBody, {**body, "first_host": "heze"})
    with pytest.raises(ContractError, match="listed more than once"):
        decode_data(ConferenceBody, {**body, "rotation_order": ["linyi", "linyi"]})
    with pytest.raises(ContractError, match="without an offset"):
        decode_data(ConferenceBody, {**body, "meeting_time": "09:00:00+08:00"})
    with pytest.raises(ContractError, match="at most 1"):
        decode_data(Quorum, {"numerator": 3, "denominator": 2})
    with pytest.raises(ContractError, match="can never be met"):
        decode_data(Quorum, {"numerator": 1, "denominator": 1})


def test_minutes_revision_names_its_base() -> None:
    with pytest.raises(ContractError, match="base_revision"):
        decode_data(MinutesRevision, {"content": "x"})
    with pytest.raises(ContractError, match="base_revision"):
        decode_data(MinutesRevision, {"content": "x", "base_revision": -1})


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    call = decode_data(ConsultationCall, _call())
    with pytest.raises(ValidationError):
        call.title = "changed"  # type: ignore[misc]
    with pytest.raises(ContractError, match="priority: Extra inputs are not permitted"):
        decode_data(ConsultationCall, _call(priority="high"))
    with pytest.raises(ContractError, match="schema_version"):
        decode_data(ConsultationCall, _call(schema_version=2))


def test_labels_are_chinese() -> None:
    assert MeetingKind.CONSULTATION.label_zh == "会商"
    assert MeetingKind.CONFERENCE.label_zh == "联席会议"
    assert ActionItemState.CLOSED.label_zh == "已办结"
