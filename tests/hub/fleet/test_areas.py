"""An incident's watched area: vehicles entering and leaving it, decided where positions are stored,
told to the incident's own desk once each, without flapping on the edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contracts.mqtt import Telemetry, decode_message, encode, telemetry_topic
from hub.config import Settings
from hub.extensions import db
from hub.fleet import areas, ingest
from hub.fleet import services as fleet
from hub.fleet.models import Vehicle, WatchAreaEvent
from hub.incidents import dispatch, timeline
from hub.incidents import services as incidents
from hub.kernel import desk
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput
from hub.kernel.models import City, Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)
ROOT = "hh"
CENTRE = (34.262, 117.185)  # lat, lon: Xuzhou
M_PER_DEG_LAT = 110_574.0


def _north(metres: float) -> tuple[float, float]:
    """Return the (lon, lat) point that many metres north of the centre."""
    return (CENTRE[1], CENTRE[0] + metres / M_PER_DEG_LAT)


@pytest.fixture
def vehicle(app, city) -> Vehicle:
    registered, _ = fleet.register_vehicle(db.session, ADMIN, city("suqian"), "sq-01", "宿迁1号指挥车")
    db.session.commit()
    return registered


class Drive:
    """Reports the vehicle's positions through the ingest service, one batch each, a second apart."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC) - timedelta(minutes=10)
        self.seq = 0

    def to(self, point: tuple[float, float]) -> None:
        self.seq += 1
        self.at += timedelta(seconds=1)
        report = Telemetry(
            vehicle="sq-01", lon=point[0], lat=point[1], speed_kmh=40.0, heading=0.0, at=self.at, seq=self.seq
        )
        address, payload = decode_message(telemetry_topic(ROOT, "suqian", "sq-01"), encode(report))
        ingest.apply_batch(db.session, [ingest.Inbound(address, payload, encode(report))], root=ROOT)
        db.session.commit()


def _events() -> list[bool]:
    return [e.entered for e in db.session.scalars(select(WatchAreaEvent).order_by(WatchAreaEvent.id))]


def _area_items(slug: str, settings: Settings) -> list[str]:
    city_id = db.session.scalar(select(City.id).where(City.slug == slug))
    assert city_id is not None
    return [
        i.key or ""
        for i in desk.for_city(db.session, city_id, settings).alerting
        if (i.key or "").startswith("fleet:area:")
    ]


def test_entering_and_leaving_a_watched_circle_is_told_once_each_without_flapping(
    vehicle: Vehicle, make_user, make_incident, settings: Settings
) -> None:
    incident = make_incident("xuzhou", latitude=CENTRE[0], longitude=CENTRE[1])
    owner = Actor.for_user(make_user("xz", "xuzhou"))
    drive = Drive()
    drive.to(_north(3_000))  # before anything is watched
    dispatch.watch_area(db.session, owner, incident.id, 1_000)
    db.session.commit()
    (area,) = areas.active_for_incident(db.session, incident.id)
    assert areas.inside(db.session, area.id) == [] and _events() == []

    # Along the edge, 50 m either side of it: nothing yet (the band is 150 m).
    for metres in (1_050, 950, 1_050, 900):
        drive.to(_north(metres))
    assert _events() == []
    drive.to(_north(700))
    assert _events() == [True] and areas.inside(db.session, area.id) == [vehicle.id]
    # On the edge again, in and out by 100 m: still inside, told nothing more.
    for metres in (1_100, 900, 1_100):
        drive.to(_north(metres))
    assert _events() == [True]
    drive.to(_north(1_300))
    assert _events() == [True, False] and areas.inside(db.session, area.id) == []

    # The owner's desk hears of both; the vehicle's own city and others do not.
    assert len(_area_items("xuzhou", settings)) == 2
    assert _area_items("suqian", settings) == []
    story = timeline.story(db.session, owner, incidents.get_incident(db.session, incident.id))
    assert [e.entered for e in story if e.kind == "area"] == [True, False]


def test_only_the_incidents_city_watches_and_a_new_circle_replaces_the_old(
    vehicle: Vehicle, make_user, make_incident
) -> None:
    incident = make_incident("xuzhou", latitude=CENTRE[0], longitude=CENTRE[1])
    with pytest.raises(Forbidden):
        dispatch.watch_area(db.session, Actor.for_user(make_user("sq", "suqian")), incident.id, 1_000)
    owner = Actor.for_user(make_user("xz", "xuzhou"))
    with pytest.raises(InvalidInput):
        dispatch.watch_area(db.session, owner, incident.id, 10)
    with pytest.raises(InvalidInput):
        dispatch.watch_area(db.session, owner, make_incident("xuzhou").id, 1_000)  # no place
    drive = Drive()
    drive.to(_north(500))
    dispatch.watch_area(db.session, owner, incident.id, 1_000)
    db.session.commit()
    assert _events() == [True]  # already inside when the circle was drawn: told at once
    dispatch.watch_area(db.session, owner, incident.id, 300)
    db.session.commit()
    (area,) = areas.active_for_incident(db.session, incident.id)
    assert area.radius_m == 300 and areas.inside(db.session, area.id) == []
