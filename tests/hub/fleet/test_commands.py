"""Commands time out by their kind: a goto is done on arrival, which may outlast its TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.mqtt import Ack, AckStage, GotoAction, SetStatusAction, VehicleState
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.fleet.models import CommandState
from hub.kernel.actors import Actor
from hub.kernel.models import Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)
ROOT = "hh"


@pytest.fixture
def vehicle(app, city):
    registered, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    return registered


def test_a_received_goto_outlasts_its_ttl_until_the_arrival_limit(vehicle, make_user) -> None:
    coordinator = Actor.for_user(make_user("ly", "linyi"))
    now = datetime.now(UTC)
    driving = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.0, lon=118.0), root=ROOT
    )
    lost = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.1, lon=118.1), root=ROOT
    )
    status = commands.send_command(
        db.session, coordinator, vehicle.id, SetStatusAction(status=VehicleState.ON_SCENE), root=ROOT
    )
    for command in (driving, lost, status):
        command.state = CommandState.RECEIVED
        command.expires_at = now - timedelta(minutes=1)
    driving.state_at = now - timedelta(minutes=30)
    lost.state_at = now - commands.GOTO_ARRIVAL_LIMIT - timedelta(minutes=1)
    db.session.commit()

    assert commands.expire(db.session) == 2
    db.session.commit()
    # Still driving there half an hour after it was received: nothing timed out.
    assert driving.state == CommandState.RECEIVED
    assert lost.state == CommandState.TIMED_OUT
    assert status.state == CommandState.TIMED_OUT


def test_the_first_answer_is_kept_when_a_goto_is_done_on_arrival(vehicle, make_user) -> None:
    coordinator = Actor.for_user(make_user("ly", "linyi"))
    goto = commands.send_command(
        db.session, coordinator, vehicle.id, GotoAction(lat=35.0, lon=118.0), root=ROOT
    )
    received = datetime.now(UTC).replace(microsecond=0)
    arrived = received + timedelta(minutes=40)
    for stage, at in ((AckStage.RECEIVED, received), (AckStage.DONE, arrived)):
        commands.apply_ack(db.session, vehicle, Ack(command_id=goto.command_id, stage=stage, at=at))
    db.session.commit()
    assert (goto.state, goto.state_at, goto.acked_at) == (CommandState.DONE, arrived, received)
