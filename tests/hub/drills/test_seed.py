"""The demo's drills: one held with its report and corrective actions, and a ten-city tabletop
that a coordinator starts and watches play in minutes."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from hub.drills import seed, services
from hub.drills.models import Drill, DrillStatus
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.types import utcnow


def test_the_demo_holds_a_finished_drill_with_its_report_and_a_tabletop_to_start(app: Flask) -> None:
    assert seed.seed_demo_drills(db.session) == 2
    db.session.commit()
    assert seed.seed_demo_drills(db.session) == 0

    held = db.session.scalars(select(Drill).where(Drill.name == seed.HELD_NAME)).one()
    assert held.status == DrillStatus.ENDED and held.aar is not None
    per_city = {s["city"]: s for s in held.aar["per_city"]}  # type: ignore[index, union-attr]
    assert per_city["xuzhou"]["median_s"] == 95 and per_city["xuzhou"]["in_time"] == 1
    assert per_city["suqian"]["in_time"] == 1 and per_city["lianyungang"]["answered"] == 0
    assert len(services.observations(db.session, held.id)) == 3
    owners = {c.item.owner_city.slug for c in services.corrective_actions(db.session, held)}
    assert owners == {"lianyungang", "suqian"}

    tabletop = db.session.scalars(select(Drill).where(Drill.name == seed.TABLETOP_NAME)).one()
    assert tabletop.status == DrillStatus.APPROVED and tabletop.time_scale == seed.TABLETOP_SCALE
    assert len(services.plan_of(tabletop).participating_cities) == 10
    channels = {row.channel for row in tabletop.injects}
    assert {"desk_notice", "warning", "partner_platform", "cap", "mqtt_vehicle", "aid_request"} <= channels

    # A coordinator of Xuzhou starts it now: two hours of scenario play within four minutes.
    xuzhou = db.session.scalars(select(City).where(City.slug == "xuzhou")).one()
    now = utcnow()
    services.start(db.session, tabletop.id, now)
    clock = services.clock_of(tabletop)
    assert clock.endex_due() == now + timedelta(minutes=4)
    assert max(row.due_at for row in tabletop.injects if row.due_at) <= now + timedelta(minutes=3)
    assert (
        Actor("system", seed.CONTROLLER, xuzhou.id, Role.COORDINATOR).city_id == tabletop.controlling_city_id
    )
