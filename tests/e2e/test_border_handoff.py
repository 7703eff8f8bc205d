"""Acceptance, in a real browser: a vehicle driven across a border is handed over.

A simulated Xuzhou command vehicle (a real MQTT client on a real Mosquitto) is sent by Xuzhou to
a point in Suqian; it drives there, its positions go through the hub's MQTT bridge, and once it
is well inside Suqian the open Suqian desk sounds a notice without a reload and the Suqian
vehicles page lists it as in the city. Xuzhou sees its goto done only once the vehicle arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from connectors.sims.vehicles import SimulatedVehicle, SimVehicleSpec
from contracts.mqtt import GotoAction, VehicleState
from hub.app import settings_of
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, VehicleCommand
from hub.kernel import geography
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from tests.fixtures.hub_link import running_bridge

pytestmark = pytest.mark.e2e

ADMIN = Actor("system", "tests", None, Role.ADMIN)
XUZHOU = (117.185, 34.262)
SUQIAN = (118.275, 33.963)
APPEAR_TIMEOUT_MS = 30_000


@pytest.fixture
def bridge(app: Flask, live_hub: str, mosquitto_broker: Any) -> Iterator[None]:
    """The hub's MQTT link and bridge on the test broker, as `hub run` starts them."""
    with running_bridge(mosquitto_broker.url, settings_of(app).mqtt_root, client_id="hub-e2e") as link:
        app.extensions["mqtt_link"] = link
        try:
            yield
        finally:
            app.extensions["mqtt_link"] = None


def _inside_suqian() -> tuple[float, float]:
    """Return a point on the road from Xuzhou to Suqian a few kilometres past the border."""
    steps = 400
    for n in range(steps + 1):
        t = n / steps
        point = (XUZHOU[0] + (SUQIAN[0] - XUZHOU[0]) * t, XUZHOU[1] + (SUQIAN[1] - XUZHOU[1]) * t)
        placed = geography.place(*point)
        if placed.slug == "suqian" and placed.clearance_m > 3_000:
            return point
    raise AssertionError("the road never gets 3 km into Suqian")


def test_a_xuzhou_vehicle_driven_into_suqian_is_handed_over_to_the_suqian_desk(
    app: Flask,
    live_hub: str,
    bridge: None,
    mosquitto_broker: Any,
    city: Callable[[str], Any],
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("xuzhou"), "xz-cmd-01", "徐州1号指挥车")
    db.session.commit()
    xuzhou_coordinator = make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    make_user("suqian-duty", "suqian", Role.DUTY_OFFICER)

    suqian = new_page()
    login(suqian, "suqian-duty")
    expect(suqian.locator("#live-state")).to_have_attribute("data-state", "live")

    # About 60 km at 60-90 km/h, 1,500 times faster: two or three seconds of driving.
    sim = SimulatedVehicle(
        SimVehicleSpec("xuzhou", "xz-cmd-01", None, None, XUZHOU),
        mosquitto_broker.url,
        root=settings_of(app).mqtt_root,
        rate_hz=10.0,
        speedup=1_500.0,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.5,
    )
    with sim:
        sim.wait_connected(10)
        # The vehicle stands at home in Xuzhou first: no notice anywhere.
        xuzhou = new_page()
        login(xuzhou, "xuzhou-coord")
        xuzhou.goto(f"{live_hub}/vehicles/{vehicle.id}")
        expect(xuzhou.locator("#vehicle-live [data-online]")).to_have_attribute("data-online", "yes")
        expect(xuzhou.locator("#vehicle-speed")).to_have_text("0 km/h")
        lon, lat = _inside_suqian()
        command = commands.send_command(
            db.session,
            Actor.for_user(xuzhou_coordinator),
            vehicle.id,
            GotoAction(lat=lat, lon=lon, note="宿迁增援"),
            root=settings_of(app).mqtt_root,
        )
        db.session.commit()

        notice = suqian.locator("li[data-item-key^='fleet:entered:']")
        expect(notice).to_contain_text("徐州市 徐州1号指挥车 已进入本市", timeout=APPEAR_TIMEOUT_MS)
        expect(notice).to_have_attribute("data-alert", "1")
        assert int(suqian.locator("#live").get_attribute("data-alerting") or 0) >= 1
        shoot(suqian, "border-handoff-desk.png")

        # The goto is done once the vehicle is there, not before; its page says so, live.
        expect(xuzhou.locator("#vehicle-status")).to_contain_text("到达现场", timeout=APPEAR_TIMEOUT_MS)
        expect(xuzhou.locator("#vehicle-speed")).to_have_text("0 km/h")
        assert sim.status is VehicleState.ON_SCENE
        db.session.expire_all()
        done = db.session.get(VehicleCommand, command.id)
        assert done is not None and done.state == CommandState.DONE
        expect(xuzhou.locator(f'#commands tr[data-command="{command.command_id}"]')).to_contain_text(
            "已完成", timeout=APPEAR_TIMEOUT_MS
        )

        suqian.goto(f"{live_hub}/vehicles")
        row = suqian.locator('#vehicles tr[data-vehicle="xuzhou/xz-cmd-01"]')
        expect(row.locator(".tag.visiting")).to_have_text("在本市")
        expect(row).to_contain_text("宿迁")
        shoot(suqian, "border-handoff-vehicles.png")

        # Dropped off the air: its page says so without a reload.
        sim.go_offline(abrupt=False)
        expect(xuzhou.locator("#vehicle-live [data-online]")).to_have_attribute(
            "data-online", "no", timeout=APPEAR_TIMEOUT_MS
        )
        shoot(xuzhou, "vehicle-detail-offline.png")
