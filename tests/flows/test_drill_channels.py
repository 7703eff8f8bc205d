"""Injects through a city's platform and as CAP: real partner simulators, Prefect's harness, the
API's CAP answers; marked as exercise on every one, and none of it in the live CAP feed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connectors.sims.partner import PartnerSimulator
from contracts.bulletins import ReceiptCreate
from contracts.cap import parse_cap
from contracts.drills import EXERCISE_PREFIX, DrillPlan, ExpectedAction
from flows.drills import drill_inject, drill_startex
from hub.app import settings_of
from hub.bulletins import services as bulletins
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role, User
from hub.kernel.types import utcnow
from hub.partners import services as partners
from tests.flows.test_drills import flow_app
from tests.hub.drills.conftest import plan_data

pytestmark = pytest.mark.usefixtures("prefect_harness")
__all__ = ["flow_app"]  # the fixture, shared with the drill flows' tests
ADMIN = Actor("system", "tests", None, Role.ADMIN)
MSEL = (
    "number,offset,city,channel,message,expected_action,expected_within,contingency_of\r\n"
    "1,0:00:00,linyi,partner_platform,沂河水位超警戒，请平台值班员签收,receipt_signed,0:10:00,\r\n"
    "2,0:00:00,linyi,cap,沂沭河流域蓝色暴雨预警,receipt_signed,0:10:00,\r\n"
    "3,0:00:00,heze,partner_platform,菏泽无平台时在枢纽签收,receipt_signed,0:10:00,\r\n"
)


@pytest.fixture
def linyi_platform(flow_app: Flask, city: Callable[[str], City]) -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator("linyi", token="token-linyi", seed=7).start()
    partners.register(
        db.session, ADMIN, city("linyi"), simulator.url, "token-linyi", settings=settings_of(flow_app)
    )
    db.session.commit()
    yield simulator
    simulator.stop()


def _running(make_user: Callable[..., User]) -> Drill:
    actor = Actor.for_user(make_user("controller", "xuzhou"))
    start = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    data = plan_data(startex=start, endex=start + timedelta(hours=1))
    data["participating_cities"] = ["xuzhou", "linyi", "heze"]
    drill = services.create(db.session, actor, DrillPlan.model_validate(data))
    services.import_msel(db.session, actor, drill.id, MSEL.encode())
    services.approve(db.session, actor, drill.id)
    db.session.commit()
    assert drill_startex(drill.id) is True
    return drill


def _bulletin_id(drill: Drill, number: int) -> str:
    db.session.expire_all()
    row = next(r for r in db.session.get(Drill, drill.id).injects if r.number == number)
    assert row.delivery_ref is not None and row.delivery_ref.startswith("bulletin:")
    return row.delivery_ref.removeprefix("bulletin:")


def test_a_platform_inject_reaches_the_platform_marked_and_its_receipt_is_measured(
    linyi_platform: PartnerSimulator, make_user: Callable[..., User]
) -> None:
    drill = _running(make_user)
    assert drill_inject(drill.id, 1) == "delivered"
    # Delivered to the platform within the inject's own run, not on a later distribution round.
    received = linyi_platform.bulletins()
    assert [str(b.id) for b in received] == [_bulletin_id(drill, 1)]
    assert received[0].exercise is True and received[0].title.startswith(EXERCISE_PREFIX)
    assert drill_inject(drill.id, 1) == "already"
    assert len(linyi_platform.bulletins()) == 1

    db.session.expire_all()
    drill = db.session.get(Drill, drill.id)
    # The platform's answer is delivery, not a signature: nothing is answered yet.
    assert {m.number: m for m in services.measures(db.session, drill)}[1].first_action_at is None
    # A person of Linyi signs; the answer is measured from the platform's acceptance to that.
    signer = Actor.for_user(make_user("linyi-duty", "linyi"))
    receipt = ReceiptCreate(acknowledged_by="临沂值班员")
    bulletins.record_receipt(db.session, signer, uuid.UUID(_bulletin_id(drill, 1)), receipt)
    db.session.commit()
    db.session.expire_all()
    drill = db.session.get(Drill, drill.id)
    platform = services.platform_deliveries(db.session, drill)[1]
    measured = {m.number: m for m in services.measures(db.session, drill)}[1]
    assert measured.delivered_at == platform[2] is not None
    assert measured.expected_action is ExpectedAction.RECEIPT_SIGNED
    assert measured.first_action_at is not None and measured.in_time is True


def test_a_platform_inject_to_a_city_without_a_platform_is_read_in_the_hub(
    flow_app: Flask, make_user: Callable[..., User]
) -> None:
    drill = _running(make_user)
    assert drill_inject(drill.id, 3) == "delivered"
    db.session.expire_all()
    delivered = services.platform_deliveries(db.session, db.session.get(Drill, drill.id))[3]
    assert delivered[2] is not None


def test_a_cap_inject_is_an_exercise_alert_naming_the_drill_and_stays_out_of_the_live_feed(
    flow_app: Flask, client: FlaskClient, make_user: Callable[..., User], make_token: Callable[[str], str]
) -> None:
    drill = _running(make_user)
    assert drill_inject(drill.id, 2) == "delivered"
    bulletin_id = _bulletin_id(drill, 2)
    headers = {"Authorization": f"Bearer {make_token('linyi')}"}

    answer = client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=headers)
    assert answer.status_code == 200
    alert = parse_cap(answer.get_data())
    assert alert.status.value == "Exercise"
    assert alert.note is not None and str(drill.public_id) in alert.note
    assert alert.infos[0].headline is not None and alert.infos[0].headline.startswith(EXERCISE_PREFIX)

    feed = client.get("/api/v1/cap/feed.atom", headers=headers).get_data(as_text=True)
    assert bulletin_id not in feed and "<entry>" not in feed
    uuid.UUID(bulletin_id)
