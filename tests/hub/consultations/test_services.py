"""Consultations in the database: calling, invitations, answers, quorum, minutes, decisions, conference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from contracts.consultations import (
    AgendaItemSubmission,
    ConferenceBody,
    ConsultationCall,
    InvitationAnswer,
    MinutesRevision,
    Resolution,
)
from hub.action_items import services as action_items
from hub.consultations import rules
from hub.consultations import services as consultations
from hub.consultations.models import AgendaItem, Meeting
from hub.extensions import db
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import AuditEntry, FlowRequest, Reminder, Role
from hub.mutual_aid import services as registry
from tests.hub.mutual_aid.factories import entry


def _call(**overrides: object) -> ConsultationCall:
    body: dict[str, object] = {
        "title": "沂河洪水会商",
        "starts_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "video_link": "https://video.example.invalid/room/1",
        "invited_cities": ["xuzhou", "zaozhuang", "jining"],
    }
    body.update(overrides)
    return ConsultationCall.model_validate(body)


@pytest.fixture
def linyi(make_user):
    return Actor.for_user(make_user("ly-coord", "linyi"))


@pytest.fixture
def called(linyi):
    meeting = consultations.call(db.session, linyi, _call())
    db.session.commit()
    return meeting


def _actor(make_user, slug: str, role: Role = Role.COORDINATOR) -> Actor:
    return Actor.for_user(make_user(f"{slug}-{role.value}", slug, role))


def test_call_invites_the_listed_cities_and_the_organizer_and_queues_delivery(called) -> None:
    assert called.status == consultations.CALLED
    assert sorted(i.city.slug for i in called.invitations) == ["jining", "linyi", "xuzhou", "zaozhuang"]
    # On the desks with the call's commit; the flow asked for is the platforms' part.
    assert all(i.delivered_at == called.called_at for i in called.invitations)
    request = db.session.scalars(select(FlowRequest)).one()
    assert request.flow_name == consultations.INVITE
    assert request.parameters == {"meeting_id": called.id}
    assert db.session.scalars(select(AuditEntry.action)).all()[-2:] == [
        "meeting.called",
        "meeting.invitations_delivered",
    ]


def test_only_coordinators_call(make_user) -> None:
    with pytest.raises(Forbidden):
        consultations.call(db.session, _actor(make_user, "linyi", Role.DUTY_OFFICER), _call())
    with pytest.raises(Forbidden):
        consultations.call(db.session, _actor(make_user, "xuzhou", Role.OBSERVER), _call())


def test_call_on_an_incident_adds_affected_and_neighbouring_cities(linyi, make_incident) -> None:
    incident = make_incident("linyi", "II")
    meeting = consultations.call(
        db.session, linyi, _call(incident_id=str(incident.public_id), invited_cities=["suqian"])
    )
    invited = {i.city.slug: i.reason for i in meeting.invitations}
    assert invited["suqian"] == "invited"
    assert invited["linyi"] == "organizer"
    assert {"xuzhou", "zaozhuang", "jining", "lianyungang"} <= set(invited)


def test_the_call_puts_the_invitations_on_the_desks_in_its_own_transaction(called, make_user) -> None:
    xuzhou = _actor(make_user, "xuzhou")
    # No flow has run: the desk reads the rows the call committed.
    assert db.session.scalar(select(FlowRequest.started_at)) is None
    assert [i.meeting_id for i in consultations.invitations_to_answer(db.session, xuzhou.city_id)] == [
        called.id
    ]


def test_answer_own_city_only_and_tracked(called, make_user) -> None:
    xuzhou = _actor(make_user, "xuzhou")
    invitation = consultations.answer(
        db.session, xuzhou, called.public_id, InvitationAnswer(answer="delegate", delegate_name="王主任")
    )
    assert (invitation.city.slug, invitation.answer, invitation.delegate_name) == (
        "xuzhou",
        "delegate",
        "王主任",
    )
    assert invitation.answered_at is not None
    assert consultations.invitations_to_answer(db.session, xuzhou.city_id) == []
    with pytest.raises(NotFound):
        consultations.answer(
            db.session, _actor(make_user, "suqian"), called.public_id, InvitationAnswer(answer="accept")
        )
    with pytest.raises(Forbidden):
        consultations.answer(
            db.session,
            _actor(make_user, "xuzhou", Role.OBSERVER),
            called.public_id,
            InvitationAnswer(answer="accept"),
        )


def test_reminders_go_once_to_silent_cities(called, make_user) -> None:
    consultations.answer(
        db.session, _actor(make_user, "xuzhou"), called.public_id, InvitationAnswer(answer="accept")
    )
    now = datetime.now(UTC)
    assert consultations.unanswered_due(db.session, now) == []
    later = now + consultations.REMIND_AFTER + timedelta(seconds=1)
    assert consultations.unanswered_due(db.session, later) == [(called.id, called.public_id)]
    assert consultations.remind_unanswered(db.session, called.id, later) == 2
    assert consultations.remind_unanswered(db.session, called.id, later) == 0
    reminded = db.session.scalars(select(Reminder).where(Reminder.kind == "invitation")).all()
    assert len(reminded) == 2
    assert consultations.unanswered_due(db.session, later) == []


def test_quorum_at_the_start(called, make_user) -> None:
    consultations.answer(
        db.session, _actor(make_user, "xuzhou"), called.public_id, InvitationAnswer(answer="accept")
    )
    consultations.schedule_quorum(db.session, called.starts_at - timedelta(seconds=1), None)
    assert db.session.scalar(select(FlowRequest).where(FlowRequest.flow_name == consultations.QUORUM)) is None
    consultations.schedule_quorum(db.session, called.starts_at, None)
    consultations.schedule_quorum(db.session, called.starts_at + timedelta(seconds=5), None)
    assert (
        len(
            db.session.scalars(select(FlowRequest).where(FlowRequest.flow_name == consultations.QUORUM)).all()
        )
        == 1
    )
    result = consultations.open_session(db.session, called.id)
    assert result is not None and not result.met and (result.represented, result.needed) == (2, 3)
    assert called.status == consultations.OPENED and called.quorum_met is False
    assert consultations.open_session(db.session, called.id) is None


def _register_expert(owner: str, external_id: str) -> None:
    owner_city = cities.by_slug(db.session, owner)
    registry.register_entry(
        db.session,
        Actor("system", "seed", owner_city.id, Role.COORDINATOR),
        entry(owner, external_id, type_code="expert.flood", name=f"{owner}专家{external_id}"),
    )


@pytest.fixture
def with_experts(linyi):
    _register_expert("xuzhou", "expert-1")
    _register_expert("jining", "expert-2")
    meeting = consultations.call(db.session, linyi, _call(expert_specialities=["expert.flood"]))
    db.session.commit()
    assert sorted(e.city.slug for e in meeting.experts) == ["jining", "xuzhou"]
    return meeting


def test_experts_who_have_not_answered_are_reminded_once_on_their_citys_desk(with_experts, make_user) -> None:
    meeting = with_experts
    actors = {slug: _actor(make_user, slug) for slug in ("xuzhou", "zaozhuang", "jining")}
    # The cities answer; only the experts stay silent.
    for actor in actors.values():
        consultations.answer(db.session, actor, meeting.public_id, InvitationAnswer(answer="accept"))
    (xuzhou_expert,) = [e for e in meeting.experts if e.city.slug == "xuzhou"]
    consultations.answer_for_expert(
        db.session,
        actors["xuzhou"],
        meeting.public_id,
        xuzhou_expert.public_id,
        InvitationAnswer(answer="accept"),
    )
    now = datetime.now(UTC)
    assert consultations.unanswered_due(db.session, now) == []
    later = now + consultations.REMIND_AFTER + timedelta(seconds=1)
    assert consultations.unanswered_due(db.session, later) == [(meeting.id, meeting.public_id)]
    assert consultations.remind_unanswered(db.session, meeting.id, later) == 1
    assert consultations.remind_unanswered(db.session, meeting.id, later) == 0
    assert consultations.unanswered_due(db.session, later) == []
    (reminder,) = db.session.scalars(select(Reminder).where(Reminder.kind == consultations.EXPERT_REMINDER))
    (jining_expert,) = [e for e in meeting.experts if e.city.slug == "jining"]
    assert (reminder.subject_id, reminder.city.slug) == (jining_expert.id, "jining")
    assert jining_expert.reminded_at == later and xuzhou_expert.reminded_at is None
    # Still on the desk of the expert's city, which relays the answer.
    assert [e.id for e in consultations.experts_to_answer(db.session, actors["jining"].city_id)] == [
        jining_expert.id
    ]


def test_experts_are_shown_beside_the_quorum_but_not_counted_in_it(with_experts, make_user) -> None:
    meeting = with_experts
    for expert in meeting.experts:
        consultations.answer_for_expert(
            db.session,
            _actor(make_user, expert.city.slug),
            meeting.public_id,
            expert.public_id,
            InvitationAnswer(answer="accept"),
        )
    assert consultations.experts_attending(meeting) == (2, 2)
    # Linyi (the organizer) and two experts: the experts do not make up for the silent cities.
    result = consultations.open_session(db.session, meeting.id)
    assert result is not None and not result.met
    assert (result.represented, result.needed, result.invited) == (1, 3, 4)
    opened = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "meeting.opened")).one()
    assert opened.after is not None
    assert (opened.after["experts_attending"], opened.after["experts_invited"]) == (2, 2)


def test_minutes_revisions_and_signing_freezes(called, linyi, make_user) -> None:
    first = consultations.save_minutes(
        db.session, linyi, called.public_id, MinutesRevision(base_revision=0, content="一、汛情")
    )
    assert first is not None and first.number == 1
    assert (
        consultations.save_minutes(
            db.session, linyi, called.public_id, MinutesRevision(base_revision=1, content="一、汛情")
        )
        is None
    )
    xuzhou = _actor(make_user, "xuzhou")
    second = consultations.save_minutes(
        db.session, xuzhou, called.public_id, MinutesRevision(base_revision=1, content="一、汛情\n二、调度")
    )
    assert second is not None and (second.number, second.author) == (2, xuzhou.name)
    with pytest.raises(rules.StaleRevision):
        consultations.save_minutes(
            db.session, linyi, called.public_id, MinutesRevision(base_revision=1, content="x")
        )
    with pytest.raises(NotFound):
        consultations.save_minutes(
            db.session,
            _actor(make_user, "suqian"),
            called.public_id,
            MinutesRevision(base_revision=2, content="x"),
        )
    with pytest.raises(Forbidden):
        consultations.sign(db.session, xuzhou, called.public_id)
    consultations.sign(db.session, linyi, called.public_id)
    assert (called.signed_revision, called.status) == (2, consultations.CLOSED)
    with pytest.raises(Conflict) as refused:
        consultations.save_minutes(
            db.session, linyi, called.public_id, MinutesRevision(base_revision=2, content="y")
        )
    assert refused.value.status == 409


def test_resolution_with_follow_up_opens_action_items(called, linyi, make_user) -> None:
    data = Resolution.model_validate(
        {
            "text": "各市加强沂河沿线巡查",
            "decision_mode": "consensus",
            "follow_up": True,
            "action_items": [
                {
                    "owner_city": "xuzhou",
                    "title": "巡查沂河徐州段",
                    "due_on": (date.today() + timedelta(days=7)).isoformat(),
                }
            ],
        }
    )
    with pytest.raises(Forbidden):
        consultations.add_resolution(db.session, _actor(make_user, "xuzhou"), called.public_id, data)
    row, opened = consultations.add_resolution(db.session, linyi, called.public_id, data)
    assert row.outcome == "adopted" and row.number == 1
    (item,) = opened
    assert (item.owner_city.slug, item.chair_city.slug, item.context_id) == (
        "xuzhou",
        "linyi",
        called.public_id,
    )


def test_members_only_see_a_meeting(called, make_user) -> None:
    assert consultations.get_for(db.session, _actor(make_user, "xuzhou"), called.public_id) is called
    with pytest.raises(NotFound):
        consultations.get_for(db.session, _actor(make_user, "suqian"), called.public_id)
    assert consultations.visible_list(db.session, _actor(make_user, "suqian", Role.DUTY_OFFICER)) == []


def test_a_qualifying_incident_is_proposed_once_to_its_city(make_incident) -> None:
    small = make_incident("linyi", "IV")
    assert consultations.request_proposal(db.session, small.id) is False
    big = make_incident("linyi", "II")
    assert consultations.request_proposal(db.session, big.id) is True
    assert consultations.request_proposal(db.session, big.id) is True
    proposals = db.session.scalars(
        select(FlowRequest).where(FlowRequest.flow_name == consultations.PROPOSE)
    ).all()
    assert len(proposals) == 1
    meeting = consultations.propose_for_incident(db.session, big.id)
    assert meeting is not None and meeting.status == consultations.PROPOSED
    assert consultations.propose_for_incident(db.session, big.id) is None
    assert [m.id for m in consultations.proposals_for(db.session, meeting.organizer_city_id)] == [meeting.id]
    two = make_incident("xuzhou", "IV", affected_cities=["xuzhou", "suqian"])
    assert consultations.request_proposal(db.session, two.id) is True


def test_the_organizer_calls_a_proposal(make_incident, make_user) -> None:
    incident = make_incident("linyi", "II")
    meeting = consultations.propose_for_incident(db.session, incident.id)
    neighbour = _actor(make_user, "xuzhou")
    # A proposal is the organizer's to call: the invited cities' desks do not show it yet.
    assert all(i.delivered_at is None for i in meeting.invitations)
    assert consultations.invitations_to_answer(db.session, neighbour.city_id) == []
    with pytest.raises(Forbidden):
        consultations.confirm_proposal(db.session, neighbour, meeting.public_id)
    consultations.confirm_proposal(db.session, _actor(make_user, "linyi"), meeting.public_id)
    assert meeting.status == consultations.CALLED
    assert [i.meeting_id for i in consultations.invitations_to_answer(db.session, neighbour.city_id)] == [
        meeting.id
    ]
    assert (
        db.session.scalar(select(FlowRequest).where(FlowRequest.flow_name == consultations.INVITE))
        is not None
    )


def _body() -> ConferenceBody:
    order = [
        "xuzhou",
        "lianyungang",
        "suqian",
        "suzhou-ah",
        "huaibei",
        "zaozhuang",
        "jining",
        "linyi",
        "heze",
        "shangqiu",
    ]
    return ConferenceBody.model_validate(
        {
            "name": "淮海经济区应急联席会议",
            "member_cities": order,
            "rotation_order": order,
            "first_host": "xuzhou",
            "first_meeting_on": "2027-03-15",
        }
    )


def test_conference_planning_creates_the_next_meeting_once(make_user, city) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    turns = consultations.upcoming_turns(body)
    assert [t.host for t in turns[:3]] == ["xuzhou", "lianyungang", "suqian"]
    early = datetime(2027, 2, 1, tzinfo=UTC)
    consultations.schedule_planning(db.session, early, None)
    assert db.session.scalar(select(FlowRequest).where(FlowRequest.flow_name == consultations.PLAN)) is None
    due = datetime(2027, 2, 14, tzinfo=UTC)
    consultations.schedule_planning(db.session, due, None)
    consultations.schedule_planning(db.session, due, None)
    (request,) = db.session.scalars(
        select(FlowRequest).where(FlowRequest.flow_name == consultations.PLAN)
    ).all()
    meeting = consultations.create_regular_meeting(db.session, **request.parameters)
    assert meeting is not None and meeting.seq == 1 and meeting.chair_city.slug == "xuzhou"
    assert len(meeting.invitations) == 10
    assert all(i.delivered_at == meeting.created_at for i in meeting.invitations)
    assert meeting.agenda_deadline == rules.agenda_deadline(meeting.starts_at, 7)
    assert consultations.create_regular_meeting(db.session, **request.parameters) is None


def test_rotation_change_is_recorded_with_its_reason(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    consultations.record_rotation_change(
        db.session, admin, body.id, rules.Skip(2, "lianyungang", "承办重大活动")
    )
    assert [t.host for t in consultations.upcoming_turns(body)[:3]] == ["xuzhou", "suqian", "suzhou-ah"]
    assert db.session.scalars(select(AuditEntry.action)).all()[-1] == "conference.rotation_skip"


def _edited(body: ConferenceBody, **changes: object) -> ConferenceBody:
    return ConferenceBody.model_validate({**body.model_dump(), **changes})


def test_the_definition_is_edited_from_the_next_meeting_and_audited(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    first = consultations.create_regular_meeting(db.session, body.id, 1)
    assert first is not None
    consultations.record_rotation_change(
        db.session, admin, body.id, rules.Swap(3, "suqian", "huaibei", "汛期承办困难")
    )
    (second,) = consultations.upcoming_turns(body, 1)
    assert (second.seq, second.host, second.starts_at.date()) == (2, "lianyungang", date(2027, 9, 15))

    linyi = _actor(make_user, "linyi")
    # Every four months from 1 November, agenda ten days ahead; the rotation as it was.
    data = _edited(_body(), rhythm_months=4, agenda_deadline_days=10, first_host="lianyungang")
    data = _edited(data, first_meeting_on="2027-11-01")
    assert consultations.update_body(db.session, linyi, body.public_id, data) is not None
    turns = consultations.upcoming_turns(body, 10)
    assert [(t.seq, t.starts_at.date()) for t in turns[:3]] == [
        (2, date(2027, 11, 1)),
        (3, date(2028, 3, 1)),
        (4, date(2028, 7, 1)),
    ]
    # The swap recorded for meeting 3 still gives huaibei suqian's turn, and suqian huaibei's.
    assert [t.host for t in turns[:4]] == ["lianyungang", "huaibei", "suzhou-ah", "suqian"]
    assert turns[0].agenda_deadline == rules.agenda_deadline(turns[0].starts_at, 10)
    # The meeting held keeps its host and date.
    assert (first.host_city.slug, first.starts_at) == ("xuzhou", rules.planned_start(_body(), 1))
    entry_ = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "conference.updated")).one()
    assert entry_.actor == linyi.name and entry_.before is not None and entry_.after is not None
    assert (entry_.before["rhythm_months"], entry_.after["rhythm_months"], entry_.after["from_seq"]) == (
        6,
        4,
        2,
    )
    # The same definition again changes nothing.
    assert consultations.update_body(db.session, linyi, body.public_id, data) is None


def test_a_new_rotation_order_restarts_the_rotation_at_the_next_meeting(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    consultations.create_regular_meeting(db.session, body.id, 1)
    order = list(reversed(_body().rotation_order))
    data = _edited(_body(), rotation_order=order, first_host="shangqiu", first_meeting_on="2027-09-15")
    consultations.update_body(db.session, admin, body.public_id, data)
    assert [t.host for t in consultations.upcoming_turns(body, 3)] == ["shangqiu", "heze", "linyi"]
    assert [t.seq for t in consultations.upcoming_turns(body, 3)] == [2, 3, 4]


def test_an_edit_that_a_recorded_swap_no_longer_fits_is_refused(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    consultations.record_rotation_change(
        db.session, admin, body.id, rules.Swap(2, "lianyungang", "suqian", "承办重大活动")
    )
    before = dict(body.definition)
    # Meeting 2 would be linyi's turn in the new order, not lianyungang's.
    order = list(reversed(_body().rotation_order))
    with pytest.raises(InvalidInput):
        consultations.update_body(
            db.session, admin, body.public_id, _edited(_body(), rotation_order=order, first_host="heze")
        )
    assert body.definition == before


def test_only_admins_and_the_member_cities_coordinators_edit_the_conference(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    small = _edited(
        _body(), member_cities=["xuzhou", "suqian", "linyi"], rotation_order=["xuzhou", "suqian", "linyi"]
    )
    body = consultations.create_body(db.session, admin, small)
    changed = _edited(small, agenda_deadline_days=14)
    for outsider in (_actor(make_user, "heze"), _actor(make_user, "linyi", Role.DUTY_OFFICER)):
        with pytest.raises(Forbidden):
            consultations.update_body(db.session, outsider, body.public_id, changed)
        assert not consultations.can_steward(db.session, outsider, body)
        with pytest.raises(Forbidden):
            consultations.record_rotation_change(db.session, outsider, body.id, rules.Skip(2, "suqian", "x"))
    member = _actor(make_user, "suqian")
    assert consultations.can_steward(db.session, member, body)
    assert consultations.update_body(db.session, member, body.public_id, changed) is not None
    assert consultations.body_contract(body).agenda_deadline_days == 14


def test_open_items_are_carried_to_the_next_meeting(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    first = consultations.create_regular_meeting(db.session, body.id, 1)
    xuzhou = _actor(make_user, "xuzhou")
    consultations.add_resolution(
        db.session,
        xuzhou,
        first.public_id,
        Resolution.model_validate(
            {
                "text": "建立物资互助清单",
                "decision_mode": "consensus",
                "follow_up": True,
                "action_items": [{"owner_city": "suqian", "title": "报送物资清单", "due_on": "2030-01-01"}],
            }
        ),
    )
    second = consultations.create_regular_meeting(db.session, body.id, 2)
    (agenda,) = db.session.scalars(select(AgendaItem).where(AgendaItem.meeting_id == second.id)).all()
    assert agenda.title == "报送物资清单" and agenda.carried_over >= 1


def test_agenda_submissions_close_at_the_deadline(called, make_user) -> None:
    xuzhou = _actor(make_user, "xuzhou")
    consultations.submit_agenda_item(
        db.session, xuzhou, called.public_id, AgendaItemSubmission(title="物资调拨")
    )
    called.agenda_deadline = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(Conflict):
        consultations.submit_agenda_item(
            db.session, xuzhou, called.public_id, AgendaItemSubmission(title="晚了")
        )


def test_calendar_feed_lists_meetings_and_city_feed_only_its_own(called, city) -> None:
    from icalendar import Calendar

    feed = Calendar.from_ical(consultations.calendar_feed(db.session))
    assert [str(e["uid"]) for e in feed.walk("VEVENT")] == [f"meeting-{called.public_id}@huaihai-hub"]
    other = Calendar.from_ical(consultations.calendar_feed(db.session, city("suqian")))
    assert other.walk("VEVENT") == []


def test_cancel_raises_the_sequence(called, linyi) -> None:
    consultations.cancel(db.session, linyi, called.public_id, "汛情缓解")
    assert (called.status, called.sequence) == (consultations.CANCELLED, 1)
    assert db.session.get(Meeting, called.id).status == consultations.CANCELLED
    assert action_items.owned_by(db.session, linyi.city_id) == []


def test_assessment_counts_held_meetings_and_attendance(called, linyi, make_user) -> None:
    consultations.answer(
        db.session, _actor(make_user, "xuzhou"), called.public_id, InvitationAnswer(answer="accept")
    )
    consultations.open_session(db.session, called.id)
    consultations.record_attendance(db.session, linyi, called.public_id, ["linyi", "xuzhou"])
    later = called.starts_at + timedelta(hours=2)
    figures = {row.city: row for row in consultations.assessment(db.session, later.year, later)}
    assert (figures["xuzhou"].meetings_invited, figures["xuzhou"].meetings_attended) == (1, 1)
    assert (figures["jining"].meetings_invited, figures["jining"].meetings_attended) == (1, 0)
    assert figures["heze"].meetings_invited == 0


def test_the_agenda_is_sent_once_at_its_deadline(make_user) -> None:
    admin = Actor("system", "tests", None, Role.ADMIN)
    body = consultations.create_body(db.session, admin, _body())
    meeting = consultations.create_regular_meeting(db.session, body.id, 1)
    consultations.schedule_agenda(db.session, meeting.agenda_deadline - timedelta(seconds=1), None)
    assert (
        db.session.scalar(select(FlowRequest).where(FlowRequest.flow_name == consultations.SEND_AGENDA))
        is None
    )
    consultations.schedule_agenda(db.session, meeting.agenda_deadline, None)
    consultations.schedule_agenda(db.session, meeting.agenda_deadline + timedelta(seconds=5), None)
    (request,) = db.session.scalars(
        select(FlowRequest).where(FlowRequest.flow_name == consultations.SEND_AGENDA)
    ).all()
    assert consultations.send_agenda(db.session, **request.parameters) is True
    assert consultations.send_agenda(db.session, **request.parameters) is False
    assert meeting.sequence == 1
    with pytest.raises(Conflict):
        consultations.submit_agenda_item(
            db.session, _actor(make_user, "xuzhou"), meeting.public_id, AgendaItemSubmission(title="晚了")
        )


def test_saved_minutes_cannot_be_rewritten_in_the_database(called, linyi) -> None:
    import sqlalchemy as sa

    consultations.save_minutes(
        db.session, linyi, called.public_id, MinutesRevision(base_revision=0, content="一")
    )
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text("UPDATE meeting_minutes_revisions SET content = 'forged'"))
    db.session.rollback()
