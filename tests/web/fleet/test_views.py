"""Vehicles page, commands from the UI, and the dead-letter list."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import Vehicle, VehicleCommand
from hub.kernel import dead_letters
from hub.kernel.actors import Actor
from hub.kernel.models import MqttOutbox, Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _vehicle(city, slug: str = "linyi", code: str = "v01"):
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city(slug), code, f"{slug}指挥车")
    vehicle.latitude, vehicle.longitude, vehicle.online = 35.06, 118.33, True
    db.session.commit()
    return vehicle


def test_vehicles_page_lists_and_maps_them(client: FlaskClient, auth, make_user, city) -> None:
    _vehicle(city)
    make_user("xz", "xuzhou")
    auth.login("xz")
    page = client.get("/vehicles/live").get_data(as_text=True)
    assert 'data-vehicle="linyi/v01"' in page
    assert "在线" in page
    assert page.count('data-vehicle="linyi/v01"') == 1  # in the table; the map reads /map/layers.json


def test_coordinator_commands_own_vehicle(client: FlaskClient, auth, make_user, city) -> None:
    vehicle = _vehicle(city)
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        f"/vehicles/{vehicle.id}/commands",
        data={
            "csrf_token": auth.csrf(f"/vehicles/{vehicle.id}"),
            "kind": "goto",
            "latitude": "35.1",
            "longitude": "118.4",
            "note": "前往沂河大桥",
            "ttl_minutes": "5",
            "status": "standby",
        },
    )
    assert response.status_code == 302
    command = db.session.scalars(select(VehicleCommand)).one()
    assert (command.kind, command.arguments["note"], command.state) == ("goto", "前往沂河大桥", "pending")
    page = client.get(f"/vehicles/{vehicle.id}/commands").get_data(as_text=True)
    assert "待接收" in page


def test_goto_without_coordinates_is_refused_clearly(client: FlaskClient, auth, make_user, city) -> None:
    vehicle = _vehicle(city)
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        f"/vehicles/{vehicle.id}/commands",
        data={
            "csrf_token": auth.csrf(f"/vehicles/{vehicle.id}"),
            "kind": "goto",
            "ttl_minutes": "5",
            "status": "standby",
        },
        follow_redirects=True,
    )
    assert "指令参数有误" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(VehicleCommand)) == 0


def test_other_city_gets_403_and_nothing_is_published(client: FlaskClient, auth, make_user, city) -> None:
    vehicle = _vehicle(city)
    make_user("hz", "heze")
    auth.login("hz")
    assert "下达指令" not in client.get(f"/vehicles/{vehicle.id}").get_data(as_text=True)
    response = client.post(
        f"/vehicles/{vehicle.id}/commands",
        data={
            "csrf_token": auth.csrf("/vehicles"),
            "kind": "report_position",
            "ttl_minutes": "5",
            "status": "standby",
        },
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(MqttOutbox)) == 0


def test_dead_letters_are_listed_with_a_count(client: FlaskClient, auth, make_user) -> None:
    dead_letters.record(
        db.session, "mqtt", "hh/v1/linyi/vehicles/v01/telemetry", "malformed JSON", b"\xff{oops"
    )
    db.session.commit()
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/dead-letters").get_data(as_text=True)
    assert "malformed JSON" in page
    assert '<span class="pill">1</span>' in page


def test_a_city_sees_its_own_dead_letters_and_an_administrator_every_one(
    client: FlaskClient, auth, make_user, city
) -> None:
    dead_letters.record(db.session, "mqtt", "hh/v1/linyi/vehicles/v01/telemetry", "临沂坏消息", b"{")
    dead_letters.record(
        db.session, "partner", "http://heze.example/feed", "菏泽坏消息", b"<", city_id=city("heze").id
    )
    dead_letters.record(db.session, "mqtt", "nonsense/topic", "无主坏消息", b"?")
    db.session.commit()
    make_user("xz", "xuzhou")
    make_user("hz", "heze")
    make_user("root", "xuzhou", Role.ADMIN)
    seen = {}
    for name in ("xz", "hz", "root"):
        auth.login(name)
        page = client.get("/dead-letters").get_data(as_text=True)
        seen[name] = {reason for reason in ("临沂坏消息", "菏泽坏消息", "无主坏消息") if reason in page}
        auth.logout()
    assert seen == {"xz": set(), "hz": {"菏泽坏消息"}, "root": {"临沂坏消息", "菏泽坏消息", "无主坏消息"}}


def test_coordinator_registers_a_vehicle_and_sees_its_password_once(
    client: FlaskClient, auth, make_user
) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/vehicles",
        data={"csrf_token": auth.csrf("/vehicles"), "city": "linyi", "code": "v09", "name": "临沂9号"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "veh-linyi-v09" in page and "只显示这一次" in page
    password = re.search(r"密码：(\S+?)（", page)
    assert password
    assert password.group(1) not in client.get("/vehicles").get_data(as_text=True)


def test_coordinator_cannot_register_for_another_city(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/vehicles", data={"csrf_token": auth.csrf("/vehicles"), "city": "heze", "code": "v09", "name": "x"}
    )
    # Heze is not among the choices a Linyi coordinator gets, so the form itself refuses it.
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Vehicle)) == 0


class _Link:
    """Stands in for the hub's MQTT link on app.extensions."""

    def __init__(self, connected: bool) -> None:
        self.connected = connected


def test_vehicles_show_unknown_while_the_hub_has_no_broker(
    app, client: FlaskClient, auth, make_user, city
) -> None:
    vehicle = _vehicle(city)
    make_user("ly", "linyi")
    auth.login("ly")
    app.extensions["mqtt_link"] = _Link(connected=True)
    page = client.get("/vehicles/live").get_data(as_text=True)
    assert "online-dot on" in page and "未知" not in page

    app.extensions["mqtt_link"] = _Link(connected=False)
    page = client.get("/vehicles/live").get_data(as_text=True)
    assert "online-dot on" not in page
    assert ">在线<" not in page and "在线 1" not in page
    assert "未知" in page and 'id="mqtt-link-down"' in page
    assert ' online"' not in page and "vehicle online" not in page  # nor on the map
    detail = client.get(f"/vehicles/{vehicle.id}").get_data(as_text=True)
    assert "online-dot on" not in detail and "未知" in detail
