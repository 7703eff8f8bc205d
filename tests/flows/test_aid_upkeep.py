"""Mutual aid's upkeep through the scheduler's tick and the flows: reminders to verify, chased
signatures, requests that close themselves; each once per period however often it is asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from flask.testing import FlaskClient

from contracts.mutual_aid import AidState
from flows import mutual_aid as aid_flows
from flows.context import use_app
from flows.scheduler import Scheduler
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict
from hub.kernel.models import AuditEntry, FlowRequest, Reminder, User
from hub.mutual_aid import costs, services, upkeep
from hub.mutual_aid.models import AidCommitment, AidRequest
from tests.conftest import AuthActions
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line

pytestmark = pytest.mark.usefixtures("prefect_harness")


class _Quiet:
    def wake(self) -> None:
        pass


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


@pytest.fixture
def actors(flow_app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    return {slug: Actor.for_user(make_user(f"u-{slug}", slug)) for slug in ("xuzhou", "linyi")}


@pytest.fixture
def tick(flow_app: Flask) -> Callable[[datetime], None]:
    scheduler = Scheduler(settings_of(flow_app), wake=_Quiet())

    def run(now: datetime) -> None:
        scheduler.tick(now)
        db.session.expire_all()

    return run


def _requests(name: str) -> list[FlowRequest]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(FlowRequest).where(FlowRequest.flow_name == name).order_by(FlowRequest.id)
        )
    )


def _run(name: str, flow: Callable[..., bool]) -> list[bool]:
    """Run each request of a flow the way the dispatcher would, from its stored parameters."""
    return [flow(**r.parameters, request_id=None) for r in _requests(name)]


def _reminders(kind: str) -> list[Reminder]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Reminder).where(Reminder.kind == kind).order_by(Reminder.id)))


def test_a_city_with_unverified_entries_is_reminded_once_a_week(
    actors: dict[str, Actor], tick, client: FlaskClient, auth: AuthActions
) -> None:
    now = datetime.now(UTC)
    services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="old", verified_at=now - timedelta(days=40))
    )
    services.register_entry(db.session, actors["xuzhou"], entry(external_id="new"))
    services.register_entry(db.session, actors["linyi"], entry(owner="linyi", external_id="new"))
    db.session.commit()

    for seconds in (0, 5, 3600):
        tick(now + timedelta(seconds=seconds))
    (request,) = _requests(upkeep.VERIFY)
    week = upkeep.week_of(now + timedelta(seconds=3600))
    assert request.parameters["city_id"] == actors["xuzhou"].city_id and request.parameters["week"] in (
        week,
        week - 1,
    )
    assert aid_flows.remind_verify(**request.parameters) is True
    assert aid_flows.remind_verify(**request.parameters) is False  # the same week again
    (reminder,) = _reminders("aid_verify")
    assert reminder.city_id == actors["xuzhou"].city_id and reminder.details["entries"] == ["old"]

    # The desk says it, in the duty officer's words.
    auth.login("u-xuzhou")
    page = client.get("/").get_data(as_text=True)
    assert "1 条资源超过 30 天未核实" in page and "aid-verify" in page
    auth.logout()
    auth.login("u-linyi")
    assert "aid-verify" not in client.get("/").get_data(as_text=True)

    # A week later: reminded again, once.
    later = now + upkeep.REMIND_EVERY + timedelta(hours=1)
    tick(later)
    tick(later + timedelta(seconds=5))
    assert len(_requests(upkeep.VERIFY)) == 2
    assert _run(upkeep.VERIFY, aid_flows.remind_verify) == [False, True]
    assert len(_reminders("aid_verify")) == 2

    # Verified again: nothing more to remind of, and the desk item is gone.
    services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="old", verified_at=later, updated_at=later)
    )
    db.session.commit()
    much_later = later + upkeep.REMIND_EVERY
    tick(much_later)
    assert len(_requests(upkeep.VERIFY)) == 2
    assert (
        upkeep.unverified(db.session, actors["xuzhou"].city_id, settings_of(current_app), much_later) is None
    )


def _returned(actors: dict[str, Actor], quantity: int = 4) -> AidCommitment:
    """A Linyi request filled by Xuzhou's pumps, dispatched, released and returned."""
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=quantity)], contact=CONTACT
    )
    c = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(quantity))
    services.accept(db.session, actors["linyi"], c.id)
    services.authorise(db.session, actors["xuzhou"], c.id, "XZ-1")
    services.dispatch(db.session, actors["xuzhou"], c.id)
    services.arrive(db.session, actors["linyi"], c.id)
    services.release(db.session, actors["linyi"], c.id)
    services.confirm_return(db.session, actors["xuzhou"], c.id, services.ReturnCounts(consumed=Decimal(1)))
    db.session.commit()
    return c


def test_a_missing_cost_signature_is_chased_once_per_round(actors: dict[str, Actor], tick) -> None:
    c = _returned(actors)
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("5600.00"))
    costs.sign_cost(db.session, actors["xuzhou"], c.id)
    db.session.commit()
    entered = c.actual_cost_at
    assert entered is not None

    tick(entered + upkeep.SIGN_WITHIN - timedelta(minutes=1))
    assert _requests(upkeep.CHASE) == []
    first = entered + upkeep.SIGN_WITHIN + timedelta(minutes=1)
    tick(first)
    tick(first + timedelta(hours=5))
    (request,) = _requests(upkeep.CHASE)
    assert request.parameters == {"commitment_id": c.id, "side": "requester", "round": 1}
    assert _run(upkeep.CHASE, aid_flows.chase_signature) == [True]
    assert _run(upkeep.CHASE, aid_flows.chase_signature) == [False]
    (reminder,) = _reminders("aid_cost_sign")
    assert reminder.city_id == actors["linyi"].city_id and reminder.stage == "sign-1"

    tick(entered + 2 * upkeep.SIGN_WITHIN + timedelta(minutes=1))
    assert _run(upkeep.CHASE, aid_flows.chase_signature) == [False, True]
    assert upkeep.signatures_chased(db.session, actors["linyi"].city_id) == {c.id: 2}

    costs.sign_cost(db.session, actors["linyi"], c.id)
    db.session.commit()
    tick(entered + 3 * upkeep.SIGN_WITHIN + timedelta(minutes=1))
    assert len(_requests(upkeep.CHASE)) == 2  # frozen: nothing more to chase
    assert len(_reminders("aid_cost_sign")) == 2


def test_a_request_whose_commitments_all_ended_closes_itself(actors: dict[str, Actor], tick) -> None:
    c = _returned(actors, quantity=4)
    # A second offer for the same line, declined by the requester.
    spare = services.register_entry(db.session, actors["xuzhou"], entry(external_id="pump-2"))
    declined = services.make_offer(db.session, actors["xuzhou"], c.line_id, spare.id, Decimal(1))
    db.session.commit()
    now = datetime.now(UTC)
    tick(now)
    assert _requests(upkeep.CLOSE) == []  # an offer is still open

    services.decline(db.session, actors["linyi"], declined.id)
    db.session.commit()
    tick(now + timedelta(seconds=5))
    tick(now + timedelta(seconds=10))
    (request,) = _requests(upkeep.CLOSE)
    assert aid_flows.close_request(**request.parameters) is True
    assert aid_flows.close_request(**request.parameters) is False
    db.session.expire_all()
    closed = db.session.get(AidRequest, c.request_id)
    assert closed.status == "closed"
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "aid_request.closed"))
    assert audit.after == {
        "lines": {
            str(c.line_id): {"dispatched": "4.000", "returned": "3.000", "consumed": "1.000", "lost": "0.000"}
        }
    }
    with pytest.raises(Conflict):
        services.make_offer(db.session, actors["xuzhou"], c.line_id, spare.id, Decimal(1))
    db.session.rollback()
    tick(now + timedelta(seconds=15))
    assert len(_requests(upkeep.CLOSE)) == 1


def test_a_request_that_moved_after_the_tick_stays_open_until_a_later_one(
    actors: dict[str, Actor], tick
) -> None:
    c = _returned(actors, quantity=4)
    now = datetime.now(UTC)
    tick(now)
    (request,) = _requests(upkeep.CLOSE)
    # Between the tick and the flow, a city offers more.
    spare = services.register_entry(db.session, actors["xuzhou"], entry(external_id="pump-2"))
    late = services.make_offer(db.session, actors["xuzhou"], c.line_id, spare.id, Decimal(1))
    db.session.commit()
    assert aid_flows.close_request(**request.parameters) is False
    services.withdraw(db.session, actors["xuzhou"], late.id)
    db.session.commit()
    tick(now + timedelta(seconds=5))
    first, second = _requests(upkeep.CLOSE)
    assert first.id == request.id and second.key != request.key
    assert aid_flows.close_request(**second.parameters) is True
    assert db.session.get(AidRequest, c.request_id).status == "closed"


def test_a_request_waiting_for_answers_stays_open(actors: dict[str, Actor], tick) -> None:
    c = _returned(actors, quantity=4)
    services.ask_ring(db.session, c.request_id, 0, fresh_for=FRESH_FOR)
    db.session.commit()
    asked = services.asks(db.session, c.request_id)
    assert asked and all(a.answered_at is None for a in asked)
    now = datetime.now(UTC)
    tick(now)
    assert _requests(upkeep.CLOSE) == []
    tick(max(a.deadline for a in asked) + timedelta(seconds=1))
    assert len(_requests(upkeep.CLOSE)) == 1
    assert c.state == AidState.RETURNED.value


def test_a_request_no_city_helps_with_ends_unfilled_once_every_ring_was_asked(
    actors: dict[str, Actor],
    tick,
    make_user: Callable[..., User],
    client: FlaskClient,
    auth: AuthActions,
) -> None:
    heze = Actor.for_user(make_user("u-heze", "heze"))
    make_user("ly", "linyi")
    heze_point = {"lat": 35.247, "lon": 115.469}
    services.register_entry(db.session, actors["xuzhou"], entry())  # about 140 km: the first ring
    services.register_entry(db.session, heze, entry(owner="heze", location=heze_point))  # about 260 km
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=10)], contact=CONTACT
    )
    db.session.commit()
    assert aid_flows.ask_ring(request.id, 0) == ["xuzhou"]
    services.decline_ask(db.session, actors["xuzhou"], request.id)
    db.session.commit()
    now = datetime.now(UTC)
    tick(now)
    assert _requests(upkeep.CLOSE) == []  # Heze is left to ask: the request goes on
    assert [r.parameters["ring"] for r in _requests(services.SOURCE)] == [0, 1]
    assert aid_flows.ask_ring(request.id, 1) == ["heze"]

    # Heze stays silent past its deadline; nobody is left to ask and nothing was offered.
    (late,) = [a for a in services.asks(db.session, request.id) if a.ring == 1]
    late.deadline = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    tick(now + timedelta(seconds=5))
    tick(now + timedelta(seconds=10))
    (ending,) = _requests(upkeep.CLOSE)
    assert aid_flows.close_request(**ending.parameters) is True
    assert aid_flows.close_request(**ending.parameters) is False
    db.session.expire_all()
    assert db.session.get(AidRequest, request.id).status == upkeep.UNFILLED
    (audit,) = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "aid_request.unfilled"))
    assert audit.after == {"lines": {}, "asks": {"declined": 1, "silent": 1}}
    tick(now + timedelta(seconds=15))
    assert len(_requests(upkeep.CLOSE)) == 1

    # The requesting city sees it on its desk (sounding until acknowledged) and on the request.
    auth.login("ly")
    desk = client.get("/").get_data(as_text=True)
    assert "支援未能满足" in desk and 'data-item-key="mutual_aid:unfilled:' in desk
    page = client.get(f"/aid/requests/{request.public_id}").get_data(as_text=True)
    assert "未能满足" in page


def test_a_request_that_found_no_city_at_all_ends_unfilled_after_its_first_window(
    actors: dict[str, Actor], tick
) -> None:
    request = services.create_request(
        db.session, actors["linyi"], title="无资源", lines=[line(quantity=10)], contact=CONTACT
    )
    db.session.commit()
    assert aid_flows.ask_ring(request.id, 0) == []
    now = datetime.now(UTC)
    tick(now)
    assert _requests(upkeep.CLOSE) == []  # the first ring's window is still open
    request.created_at = now - services.ASK_WINDOW - timedelta(seconds=1)
    db.session.commit()
    tick(now + timedelta(seconds=5))
    (ending,) = _requests(upkeep.CLOSE)
    assert aid_flows.close_request(**ending.parameters) is True
    db.session.expire_all()
    assert db.session.get(AidRequest, request.id).status == upkeep.UNFILLED
