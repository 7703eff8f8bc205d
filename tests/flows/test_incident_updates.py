"""Updates reach the cities already told: follow-up reports, level, status and affected cities."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contracts.common import IncidentLevel, IncidentStatus, ReportKind
from contracts.incidents import FollowUpCreate
from flows.context import use_app
from flows.incidents import notify_incident_update, notify_neighbours
from hub.app import settings_of
from hub.extensions import db
from hub.incidents import desk as incident_desk
from hub.incidents import services as incidents
from hub.incidents.models import IncidentUpdate, Notification
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest

pytestmark = pytest.mark.usefixtures("prefect_harness")

FIRST_TOLD = ["jining", "lianyungang", "xuzhou", "zaozhuang"]  # Linyi's neighbours


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def _notices(incident_id: int, kind_prefix: str) -> dict[str, Notification]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(Notification).where(
            Notification.incident_id == incident_id, Notification.kind.startswith(kind_prefix)
        )
    )
    return {n.city.slug: n for n in rows}


def _last_update() -> IncidentUpdate:
    update = db.session.scalars(select(IncidentUpdate).order_by(IncidentUpdate.id.desc())).first()
    assert update is not None
    return update


def test_every_change_reaches_the_cities_already_told_with_what_changed(
    flow_app, make_incident, make_user
) -> None:
    incident = make_incident("linyi", "III")
    coordinator = Actor.for_user(make_user("ly-coord", "linyi"))
    # Nobody told yet: a report changes nothing for other cities.
    incidents.add_report(
        db.session, coordinator, incident.id, FollowUpCreate(kind=ReportKind.FOLLOW_UP, body="水位仍在上涨")
    )
    db.session.commit()
    assert db.session.scalars(select(IncidentUpdate)).all() == []

    notify_neighbours(incident.id)
    assert sorted(_notices(incident.id, "incident")) == FIRST_TOLD

    # A follow-up report (续报): each city told hears it once, however often the flow runs.
    incidents.add_report(
        db.session,
        coordinator,
        incident.id,
        FollowUpCreate(kind=ReportKind.FOLLOW_UP, body="已转移群众1200人"),
    )
    db.session.commit()
    update = _last_update()
    assert update.changes == {"report": {"kind": "follow_up", "body": "已转移群众1200人"}}
    assert notify_incident_update(update.id) == {"recipients": 4, "created": 4}
    assert notify_incident_update(update.id) == {"recipients": 4, "created": 0}
    assert sorted(_notices(incident.id, f"update:{update.id}")) == FIRST_TOLD

    # Level III -> II and Xuzhou now affected: the four told hear both; Xuzhou no longer reads
    # 相邻城市; Xuzhou's own neighbours, newly concerned, get the first notice as it stands now.
    incidents.update_incident(
        db.session,
        coordinator,
        incident.id,
        incidents.IncidentChanges(level=IncidentLevel.II, affected_cities=("linyi", "xuzhou")),
    )
    db.session.commit()
    update = _last_update()
    assert update.changes == {"level": ["III", "II"], "added": ["xuzhou"]}
    assert sorted(update.recipients) == FIRST_TOLD
    assert _notices(incident.id, "incident")["xuzhou"].reason == "affected"
    assert notify_incident_update(update.id) == {"recipients": 4, "created": 4}
    assert _notices(incident.id, f"update:{update.id}")["xuzhou"].reason == "affected"
    notify_neighbours(incident.id)
    first = _notices(incident.id, "incident")
    newly = sorted(set(first) - set(FIRST_TOLD))
    assert newly and "suqian" in newly
    assert not any(slug in _notices(incident.id, f"update:{update.id}") for slug in newly)

    # The level II update is urgent and alerts on a told city's desk until read.
    jining = first["jining"].city_id
    urgent = incident_desk.urgent(db.session, jining, settings_of(flow_app))
    keys = {item.key for item in urgent if item.alert}
    assert f"incidents:notice:{_notices(incident.id, f'update:{update.id}')['jining'].id}" in keys

    # Closing it (status) reaches every city told by then, the newly concerned included.
    incidents.update_incident(
        db.session, coordinator, incident.id, incidents.IncidentChanges(status=IncidentStatus.CLOSED)
    )
    db.session.commit()
    closing = _last_update()
    assert closing.changes == {"status": ["responding", "closed"]}
    assert sorted(closing.recipients) == sorted(first)
    keys = [
        r.key for r in db.session.scalars(select(FlowRequest)) if r.key.startswith("notify-incident-update")
    ]
    assert f"notify-incident-update:{closing.id}" in keys


def test_the_desk_says_what_changed(flow_app, make_incident, make_user, client: FlaskClient, auth) -> None:
    incident = make_incident("linyi", "II")
    coordinator = Actor.for_user(make_user("ly-coord", "linyi"))
    make_user("xz-duty", "xuzhou")
    notify_neighbours(incident.id)
    incidents.update_incident(
        db.session,
        coordinator,
        incident.id,
        incidents.IncidentChanges(level=IncidentLevel.I, affected_cities=("linyi", "xuzhou")),
    )
    db.session.commit()
    notify_incident_update(_last_update().id)
    auth.login("xz-duty")
    desk = client.get("/dashboard/live").get_data(as_text=True)
    urgent = desk.split('id="urgent-title"')[1].split("</section>")[0]
    assert "级别 II → I" in urgent and "新增受影响城市：徐州" in urgent
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    told = detail.split("已通报城市")[1].split("</section>")[0]
    assert told.count("徐州") == 1 and "本市受影响" in told.split("徐州")[1].split("</li>")[0]
