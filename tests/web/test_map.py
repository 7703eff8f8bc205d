"""The map's endpoints: boundaries, layers, and which city a picked point is in."""

from __future__ import annotations

from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.kernel.types import utcnow

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def test_boundaries_are_served_by_the_hub(client, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.get("/api/v1/map/boundaries.geojson")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    features = response.get_json(force=True)["features"]
    assert sum(1 for f in features if f["properties"]["member"]) == 10


def test_boundaries_need_a_log_in(client) -> None:
    assert client.get("/api/v1/map/boundaries.geojson").status_code == 401


def test_city_at_names_the_member_city(client, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    assert client.get("/map/city-at.json?lat=34.262&lon=117.185").get_json() == {
        "city": "xuzhou",
        "name": "徐州市",
    }
    assert client.get("/map/city-at.json?lat=31.2&lon=121.5").get_json() == {"city": None, "name": None}
    assert client.get("/map/city-at.json?lat=x&lon=1").status_code == 400


def test_layers_list_open_incidents_and_placed_vehicles(client, auth, make_user, make_incident) -> None:
    make_user("ly", "linyi")
    incident = make_incident("linyi", "II")
    vehicle, _ = fleet.register_vehicle(
        db.session, ADMIN, cities.by_slug(db.session, "linyi"), "v01", "临沂指挥车"
    )
    vehicle.latitude, vehicle.longitude, vehicle.heading, vehicle.position_at = 35.1, 118.3, 90.0, utcnow()
    db.session.commit()
    auth.login("ly")
    data = client.get("/map/layers.json").get_json()
    [shown] = data["incidents"]
    assert shown["id"] == incident.id and shown["level"] == "II" and shown["own"] and not shown["placed"]
    [car] = data["vehicles"]
    assert (car["code"], car["city"], car["heading"], car["stale"]) == ("v01", "linyi", 90.0, False)


def test_layers_carry_the_mutual_aid_registry_and_open_requests(client, auth, make_user) -> None:
    from hub.mutual_aid import services as aid
    from tests.hub.mutual_aid.factories import CONTACT, entry, line

    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    linyi = Actor.for_user(make_user("ly", "linyi"))
    pumps = aid.register_entry(db.session, xuzhou, entry())
    request = aid.create_request(
        db.session, linyi, title="沂河洪水排涝", lines=[line(quantity=4)], contact=CONTACT
    )
    aid.create_request(db.session, linyi, title="演练", lines=[line()], contact=CONTACT, exercise=True)
    db.session.commit()
    auth.login("ly")
    data = client.get("/map/layers.json").get_json()
    [resource] = data["aid_resources"]
    assert (resource["id"], resource["city"], resource["lat"], resource["lon"]) == (
        pumps.id,
        "xuzhou",
        pumps.lat,
        pumps.lon,
    )
    [asked] = data["aid_requests"]  # the exercise request stays off the live map
    assert asked["id"] == str(request.public_id) and asked["lat"] == request.lines[0].report_to_lat
    assert asked["url"].endswith(str(request.public_id))
    assert data["injects"] == []


def test_layers_carry_the_platforms_open_incidents_at_their_citys_centre(
    client, auth, make_user, city
) -> None:
    from datetime import UTC, datetime

    from hub.partners.models import PartnerRecord

    xuzhou = city("xuzhou")
    now = datetime.now(UTC)
    for external_id, status in (("XZ-7", "responding"), ("XZ-8", "closed")):
        db.session.add(
            PartnerRecord(
                city_id=xuzhou.id,
                feed="incidents",
                external_id=external_id,
                updated_at=now,
                data={"title": "邳州段管涌", "level": "II", "location": "邳州市运河镇", "status": status},
            )
        )
    db.session.commit()
    make_user("ly", "linyi")
    auth.login("ly")
    [listed] = client.get("/map/layers.json").get_json()["platform_incidents"]  # the closed one is not
    assert (listed["id"], listed["city"], listed["location"]) == ("XZ-7", "xuzhou", "邳州市运河镇")
    assert (listed["lat"], listed["lon"]) == (xuzhou.latitude, xuzhou.longitude)
    assert client.get(listed["url"]).status_code == 200
