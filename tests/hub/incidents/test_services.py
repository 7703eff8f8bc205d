"""Incident rules: own city only, observers read only, the regional notice threshold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contracts.common import IncidentLevel, IncidentStatus, ReportKind
from contracts.incidents import FollowUpCreate, IncidentCreate
from hub.extensions import db
from hub.incidents import services as incidents
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, NotFound
from hub.kernel.models import AuditEntry, FlowRequest, Role
from tests.conftest import incident_payload


def _create(actor: Actor, **overrides: object) -> Incident:
    return incidents.create_incident(
        db.session, actor, IncidentCreate.model_validate(incident_payload(**overrides))
    )


def test_coordinator_records_for_own_city_with_audit(make_user) -> None:
    user = make_user("linyi-1", "linyi")
    incident = _create(Actor.for_user(user), level="IV")
    db.session.commit()
    assert incident.reporting_city.slug == "linyi"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "incident.created")).one()
    assert entry.actor == "linyi-1"
    assert entry.city_id == user.city_id
    assert entry.after["title"] == "沂河水位上涨"


def test_level_iv_single_city_requests_no_notice(make_user) -> None:
    _create(Actor.for_user(make_user("u", "linyi")), level="IV")
    db.session.commit()
    assert db.session.scalars(select(FlowRequest)).all() == []


@pytest.mark.parametrize(
    ("level", "affected", "expected"),
    [
        ("III", ["linyi"], 1),
        ("I", ["linyi"], 1),
        ("IV", ["linyi", "xuzhou"], 1),
        ("IV", ["linyi"], 0),
    ],
)
def test_notice_threshold(make_user, level: str, affected: list[str], expected: int) -> None:
    _create(Actor.for_user(make_user("u", "linyi")), level=level, affected_cities=affected)
    db.session.commit()
    assert len(db.session.scalars(select(FlowRequest)).all()) == expected


def test_observer_cannot_record_and_nothing_changes(make_user) -> None:
    observer = make_user("obs", "linyi", Role.OBSERVER)
    with pytest.raises(Forbidden):
        _create(Actor.for_user(observer))
    db.session.rollback()
    assert db.session.scalars(select(Incident)).all() == []


def test_coordinator_cannot_edit_another_citys_incident(make_user, make_incident) -> None:
    incident = make_incident("linyi", "IV")
    other = Actor.for_user(make_user("xz", "xuzhou"))
    with pytest.raises(Forbidden):
        incidents.add_report(db.session, other, incident.id, FollowUpCreate(body="越权续报"))
    with pytest.raises(Forbidden):
        incidents.update_incident(
            db.session, other, incident.id, incidents.IncidentChanges(level=IncidentLevel.I)
        )
    db.session.rollback()
    fresh = incidents.get_incident(db.session, incident.id)
    assert fresh.reports == []
    assert fresh.level == 4


def test_unknown_affected_city_is_refused(make_user) -> None:
    with pytest.raises(NotFound, match="atlantis"):
        _create(Actor.for_user(make_user("u", "linyi")), affected_cities=["linyi", "atlantis"])


def test_follow_up_then_final_closes(make_user, make_incident) -> None:
    incident = make_incident("linyi")
    actor = Actor.for_user(make_user("ly", "linyi"))
    incidents.add_report(db.session, actor, incident.id, FollowUpCreate(body="水位回落"))
    assert incident.status is IncidentStatus.RESPONDING
    incidents.add_report(db.session, actor, incident.id, FollowUpCreate(kind=ReportKind.FINAL, body="办结"))
    assert incident.status is IncidentStatus.CLOSED
    with pytest.raises(Conflict):
        incidents.add_report(db.session, actor, incident.id, FollowUpCreate(body="再报"))


def test_raising_the_level_later_requests_the_notice(make_user, make_incident) -> None:
    incident = make_incident("linyi", "IV")
    actor = Actor.for_user(make_user("ly", "linyi"))
    incidents.update_incident(
        db.session, actor, incident.id, incidents.IncidentChanges(level=IncidentLevel.II)
    )
    db.session.commit()
    request = db.session.scalars(select(FlowRequest)).one()
    assert request.parameters == {"incident_id": incident.id}


def test_listing_filters_and_pages(make_incident) -> None:
    for n in range(5):
        make_incident("linyi", "IV", title=f"事件{n}")
    make_incident("heze", "II", title="菏泽事件")
    page = incidents.list_incidents(db.session, incidents.IncidentFilter(city="linyi"), page=2, per_page=2)
    assert (page.total, page.pages, len(page.items)) == (5, 3, 2)
    severe = incidents.list_incidents(db.session, incidents.IncidentFilter(level_at_most=2))
    assert [i.title for i in severe.items] == ["菏泽事件"]


def test_contract_round_trip(make_incident) -> None:
    incident = make_incident("linyi", "III")
    contract = incidents.to_contract(incident)
    assert contract.level is IncidentLevel.III
    assert contract.model_dump(mode="json")["level"] == "III"
    assert contract.affected_cities == ("linyi",)


def test_the_place_picked_on_the_map_is_kept_and_exchanged(make_user) -> None:
    user = make_user("linyi-1", "linyi")
    incident = _create(Actor.for_user(user), latitude=35.104, longitude=118.356)
    db.session.commit()
    assert (incident.latitude, incident.longitude) == (35.104, 118.356)
    contract = incidents.to_contract(incident)
    assert (contract.latitude, contract.longitude) == (35.104, 118.356)


def test_half_a_position_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="both or neither"):
        IncidentCreate.model_validate(incident_payload(latitude=35.1))
    with pytest.raises(ValidationError):
        IncidentCreate.model_validate(incident_payload(latitude=95.0, longitude=118.3))
