"""Drill services against a real database: plan, start once, play through the live pipes, end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from contracts.drills import DrillPlan, ExpectedAction
from contracts.errors import ContractError
from hub.drills import rules, services
from hub.drills.models import Drill, DrillInject, DrillStatus
from hub.extensions import db
from hub.incidents import services as incidents
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden
from hub.kernel.models import FlowRequest, Role, User
from hub.kernel.types import utcnow
from tests.hub.drills.conftest import plan_data


def _rows(drill: Drill) -> dict[int, DrillInject]:
    db.session.expire_all()
    return {row.number: row for row in db.session.get(Drill, drill.id).injects}


def test_only_the_controlling_citys_coordinators_plan_a_drill(make_user: Callable[..., User]) -> None:
    plan = DrillPlan.model_validate(plan_data())
    for user in (make_user("other", "linyi"), make_user("duty", "xuzhou", Role.DUTY_OFFICER)):
        with pytest.raises(Forbidden):
            services.create(db.session, Actor.for_user(user), plan)


def test_an_msel_naming_an_unknown_channel_is_refused_with_its_line(make_drill: Callable[..., Drill]) -> None:
    bad = "number,offset,city,channel,message\r\n1,0:00:00,linyi,fax,水位\r\n"
    with pytest.raises(ContractError) as refused:
        make_drill(csv=bad)
    assert "row 2, channel" in str(refused.value)


def test_the_msel_round_trips_through_export(make_drill: Callable[..., Drill], controller: Actor) -> None:
    drill = make_drill(approved=False)
    exported = services.export_msel(drill, "csv")
    services.import_msel(db.session, controller, drill.id, exported)
    assert services.msel_of(drill) == services.msel_of(db.session.get(Drill, drill.id))
    assert len(drill.injects) == 4


def test_a_drill_starts_exactly_once(make_drill: Callable[..., Drill]) -> None:
    drill = make_drill()
    now = utcnow()
    assert services.start(db.session, drill.id, now) is True
    assert services.start(db.session, drill.id, now) is False
    rows = _rows(drill)
    assert rows[1].state == "pending" and rows[1].due_at == now
    assert rows[4].state == "held"
    assert db.session.get(Drill, drill.id).status == DrillStatus.RUNNING


def test_the_scheduler_enqueues_keyed_steps_and_injects_go_out_once(make_drill: Callable[..., Drill]) -> None:
    drill = make_drill(startex=utcnow().replace(microsecond=0) - timedelta(seconds=1))
    now = utcnow()
    services.schedule_steps(db.session, now)
    services.schedule_steps(db.session, now)
    keys = set(db.session.scalars(sa.select(FlowRequest.key)))
    assert f"drill:{drill.id}:startex" in keys
    services.start(db.session, drill.id, now)
    services.schedule_steps(db.session, now)
    keys = list(
        db.session.scalars(sa.select(FlowRequest.key).where(FlowRequest.key.like(f"drill:{drill.id}:%")))
    )
    assert sorted(keys) == [f"drill:{drill.id}:inject:1", f"drill:{drill.id}:startex"]
    first = services.deliver(db.session, drill.id, 1, now=now)
    again = services.deliver(db.session, drill.id, 1, now=now)
    assert (first.outcome, first.ref, again.outcome) == ("delivered", "desk", "already")
    assert services.deliver(db.session, drill.id, 2, now=now).outcome == "not_due"


def test_an_incident_inject_is_an_exercise_incident_that_live_counters_leave_out(
    make_drill: Callable[..., Drill], city: Callable[[str], object]
) -> None:
    drill = make_drill()
    start = utcnow() - timedelta(minutes=10)
    services.start(db.session, drill.id, start)
    before = incidents.open_counts_by_level(db.session)
    delivery = services.deliver(db.session, drill.id, 2)
    assert delivery.outcome == "delivered"
    incident = db.session.scalars(sa.select(Incident)).one()
    assert incident.exercise is True
    assert incident.title.startswith("【演练】")
    assert incidents.open_counts_by_level(db.session) == before
    assert incidents.open_counts_by_level(db.session, city("linyi")) == before  # type: ignore[arg-type]


def test_a_bulletin_inject_is_a_restricted_exercise_bulletin_whose_receipt_answers_it(
    make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    from contracts.bulletins import ReceiptCreate
    from hub.bulletins import services as bulletins
    from hub.bulletins.models import Bulletin

    drill = make_drill()
    services.start(db.session, drill.id, utcnow() - timedelta(minutes=11))
    assert services.deliver(db.session, drill.id, 3).outcome == "delivered"
    bulletin = db.session.scalars(sa.select(Bulletin)).one()
    assert (bulletin.exercise, bulletin.scope) == (True, "restricted")
    assert bulletin.title.startswith("【演练】")
    linyi = Actor.for_user(make_user("linyi-duty", "linyi"))
    bulletins.record_receipt(db.session, linyi, bulletin.public_id, ReceiptCreate(acknowledged_by="值班员"))
    measure = next(m for m in services.measures(db.session, drill) if m.number == 3)
    assert measure.first_action_at is not None and measure.in_time is True


def test_pause_shifts_pending_injects_and_controllers_only(
    make_drill: Callable[..., Drill], controller: Actor, make_user: Callable[..., User]
) -> None:
    drill = make_drill()
    start = utcnow() - timedelta(minutes=30)
    services.start(db.session, drill.id, start)
    due_before = _rows(drill)[2].due_at
    with pytest.raises(Forbidden):
        services.pause(db.session, Actor.for_user(make_user("p", "linyi")), drill.id)
    services.pause(db.session, controller, drill.id, start + timedelta(minutes=1))
    assert services.deliver(db.session, drill.id, 1).outcome == "not_in_play"
    services.resume(db.session, controller, drill.id, start + timedelta(minutes=4))
    assert _rows(drill)[2].due_at == due_before + timedelta(minutes=3)
    services.skip(db.session, controller, drill.id, 2, "指挥部决定跳过")
    assert (_rows(drill)[2].state, _rows(drill)[2].skip_reason) == ("skipped", "指挥部决定跳过")
    with pytest.raises(Conflict):
        services.skip(db.session, controller, drill.id, 1, "")


def test_an_unanswered_inject_is_flagged_and_releases_its_contingency(
    make_drill: Callable[..., Drill],
) -> None:
    drill = make_drill()
    start = utcnow() - timedelta(minutes=15)
    services.start(db.session, drill.id, start)
    services.deliver(db.session, drill.id, 1, now=start)
    services.schedule_steps(db.session, utcnow())
    assert db.session.scalar(sa.select(FlowRequest).where(FlowRequest.key == rules.flag_key(drill.id, 1)))
    assert services.flag_unanswered(db.session, drill.id) == [1]
    assert services.flag_unanswered(db.session, drill.id) == []
    rows = _rows(drill)
    assert rows[1].flagged_at is not None
    assert rows[4].state == "pending"


def test_a_read_notice_is_measured_from_delivery(
    make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    drill = make_drill()
    start = utcnow() - timedelta(seconds=90)
    services.start(db.session, drill.id, start)
    services.deliver(db.session, drill.id, 1, now=start)
    linyi = Actor.for_user(make_user("reader", "linyi"))
    assert [row.number for row in services.unread_notices(db.session, linyi.city_id or 0)] == [1]
    services.record_response(
        db.session, linyi, drill.id, ExpectedAction.NOTICE_READ, number=1, at=start + timedelta(seconds=42)
    )
    assert services.unread_notices(db.session, linyi.city_id or 0) == []
    measure = next(m for m in services.measures(db.session, drill) if m.number == 1)
    assert (measure.response_s, measure.in_time) == (42.0, True)


def test_endex_closes_the_timetable_once_and_the_aar_draft_has_the_figures(
    make_drill: Callable[..., Drill], controller: Actor
) -> None:
    drill = make_drill()
    start = utcnow() - timedelta(minutes=15)
    services.start(db.session, drill.id, start)
    services.deliver(db.session, drill.id, 1, now=start)
    assert services.end(db.session, drill.id) is True
    assert services.end(db.session, drill.id) is False
    rows = _rows(drill)
    assert [rows[n].state for n in (1, 2, 3, 4)] == ["delivered", "not_played", "not_played", "not_played"]
    services.schedule_steps(db.session, utcnow())
    assert db.session.scalar(sa.select(FlowRequest).where(FlowRequest.key == rules.aar_key(drill.id)))
    assert services.draft_aar(db.session, drill.id) is True
    assert services.draft_aar(db.session, drill.id) is False
    aar = db.session.get(Drill, drill.id).aar
    assert aar is not None
    assert aar["overall"]["measured"] == 1 and aar["overall"]["in_time"] == 0
    assert [c["city"] for c in aar["per_city"]] == ["linyi", "xuzhou"]


def test_evaluators_and_controllers_see_expectations_players_only_after_endex(
    make_drill: Callable[..., Drill], controller: Actor, make_user: Callable[..., User]
) -> None:
    drill = make_drill()
    evaluator = Actor.for_user(make_user("evaluator", "xuzhou", Role.OBSERVER))
    impostor = Actor.for_user(make_user("evaluator2", "linyi", Role.OBSERVER))
    player = Actor.for_user(make_user("player", "linyi", Role.DUTY_OFFICER))
    assert services.sees_expectations(controller, drill) and services.sees_expectations(evaluator, drill)
    assert not services.sees_expectations(impostor, drill)
    assert not services.sees_expectations(player, drill)
    services.start(db.session, drill.id)
    services.end(db.session, drill.id)
    db.session.refresh(drill)
    assert services.sees_expectations(player, drill)


def test_an_exercise_notice_stands_on_the_target_citys_desk_until_read(
    make_drill: Callable[..., Drill], make_user: Callable[..., User], app
) -> None:
    from hub.app import settings_of
    from hub.drills import desk

    drill = make_drill()
    start = utcnow() - timedelta(minutes=1)
    services.start(db.session, drill.id, start)
    services.deliver(db.session, drill.id, 1, now=start)
    linyi = Actor.for_user(make_user("reader", "linyi"))
    items = desk.urgent(db.session, linyi.city_id or 0, settings_of(app))
    assert [(i.template, i.subject.number) for i in items] == [("drills/_urgent.html", 1)]
    services.record_response(db.session, linyi, drill.id, ExpectedAction.NOTICE_READ, number=1)
    assert desk.urgent(db.session, linyi.city_id or 0, settings_of(app)) == []
