"""EDXL-RM in: a partner's message is applied once, however often it is sent."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from contracts import edxl_rm as rm
from contracts.mutual_aid import AidState
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden
from hub.kernel.models import AuditEntry, FlowRequest, User
from hub.mutual_aid import export, services
from hub.mutual_aid.models import AidCommitment, AidRequest, AidRmMessage
from tests.hub.mutual_aid.factories import CONTACT, entry, line


@pytest.fixture
def actors(app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    return {slug: Actor.for_user(make_user(f"u-{slug}", slug)) for slug in ("xuzhou", "linyi", "zaozhuang")}


def _count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _exchange(actors: dict[str, Actor]) -> tuple[AidCommitment, list[rm.RmMessage]]:
    """A Linyi request with a Xuzhou offer accepted: RequestResource, Response, Requisition."""
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=8)], contact=CONTACT
    )
    offer = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(4))
    services.accept(db.session, actors["linyi"], offer.id)
    db.session.commit()
    return offer, export.exchange(db.session, request)


def _commit(requisition: rm.RmMessage, message_id: str, order: str) -> rm.RmMessage:
    return rm.reply(
        requisition,
        rm.MessageType.COMMIT_RESOURCE,
        message_id=message_id,
        sent_at=requisition.sent_at,
        contacts=(rm.Contact(role=rm.ContactRole.SENDER, description="xuzhou"),),
        resources=(
            rm.ResourceInfo(
                element_id="L1",
                response=rm.Response(preceding_element_id="L1", type=rm.ResponseType.ACCEPT),
                order_id=order,
                quantity=requisition.resources[0].quantity,
            ),
        ),
    )


def test_a_request_resource_sent_twice_makes_one_request(actors: dict[str, Actor]) -> None:
    _, messages = _exchange(actors)
    first = export.import_message(db.session, actors["zaozhuang"], messages[0])
    db.session.commit()
    # The same message again, parsed from its XML as a redelivery would be.
    again = export.import_message(db.session, actors["zaozhuang"], rm.parse_rm(rm.build_rm(messages[0])))
    db.session.commit()
    assert isinstance(first, AidRequest) and again.id == first.id
    assert _count(AidRequest) == 2  # Linyi's own and the one imported once
    assert _count(AidRmMessage) == 1
    ring_keys = db.session.scalars(
        sa.select(FlowRequest.key).where(FlowRequest.key.like(f"aid:{first.id}:%"))
    )
    assert list(ring_keys) == [services.ring_key(first.id, 0)]


def test_the_same_id_from_another_city_is_another_message(actors: dict[str, Actor]) -> None:
    _, messages = _exchange(actors)
    export.import_message(db.session, actors["zaozhuang"], messages[0])
    export.import_message(db.session, actors["xuzhou"], messages[0])
    db.session.commit()
    assert _count(AidRequest) == 3


def test_a_message_id_reused_for_other_content_is_refused(actors: dict[str, Actor]) -> None:
    _, messages = _exchange(actors)
    export.import_message(db.session, actors["zaozhuang"], messages[0])
    db.session.commit()
    other = messages[0].model_copy(update={"description": "另一个请求"})
    with pytest.raises(Conflict) as refused:
        export.import_message(db.session, actors["zaozhuang"], other)
    assert refused.value.reason == "message_id_reused"
    db.session.rollback()
    assert _count(AidRequest) == 2


def test_a_commit_resource_sent_again_after_dispatch_changes_nothing(actors: dict[str, Actor]) -> None:
    offer, messages = _exchange(actors)
    commit = _commit(messages[2], "urn:xuzhou:commit:1", "XZ-88")
    authorised = export.import_message(db.session, actors["xuzhou"], commit)
    db.session.commit()
    assert isinstance(authorised, AidCommitment) and authorised.state == AidState.AUTHORISED.value
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    db.session.commit()
    # Without the message's row this would be refused (409: the commitment is dispatched).
    for _ in range(3):
        again = export.import_message(db.session, actors["xuzhou"], commit)
        db.session.commit()
        assert again.id == offer.id and again.state == AidState.DISPATCHED.value
    assert again.order_number == "XZ-88"
    authorisations = db.session.scalar(
        sa.select(sa.func.count()).where(AuditEntry.action == "aid_commitment.authorise")
    )
    assert authorisations == 1


def test_a_refused_message_is_not_kept(actors: dict[str, Actor]) -> None:
    _, messages = _exchange(actors)
    commit = _commit(messages[2], "urn:linyi:commit:1", "LY-1")
    with pytest.raises(Forbidden):
        export.import_message(db.session, actors["linyi"], commit)
    db.session.rollback()
    assert _count(AidRmMessage) == 0
