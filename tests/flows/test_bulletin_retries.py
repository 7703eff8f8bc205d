"""Bulletin deliveries: Prefect retries only what another try may cure; cancellations reach platforms."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

import flows.bulletins as bulletin_flows
from connectors.partner_client import (
    PartnerContractError,
    PartnerPermanentError,
    PartnerTransientError,
    is_permanent,
)
from contracts.bulletins import BulletinCreate
from contracts.partner import BulletinDelivery, DeliveryAck
from flows.context import use_app
from hub.bulletins import services as bulletins
from hub.bulletins.models import BulletinRecipient
from hub.extensions import db
from hub.kernel.actors import Actor

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _refusal(status: int | None) -> PartnerPermanentError:
    return PartnerPermanentError(
        f"HTTP {status}", url="http://platform/bulletins", status=status, code=None, body=""
    )


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (_refusal(400), True),
        (_refusal(403), True),
        (_refusal(422), True),
        (_refusal(None), True),  # a redirect or a TLS failure
        (_refusal(408), False),
        (_refusal(429), False),
        (PartnerContractError("bad ack", url="http://platform/bulletins", raw=b"{}"), True),
        (PartnerTransientError("down", url="http://platform/bulletins", attempts=3, status=503), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_which_partner_errors_are_permanent(error: BaseException, permanent: bool) -> None:
    assert is_permanent(error) is permanent


class _Platform:
    """A platform client that fails with the given errors in turn, then accepts."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[BulletinDelivery] = []

    def deliver_bulletin(self, delivery: BulletinDelivery) -> DeliveryAck:
        self.calls.append(delivery)
        if self.errors:
            raise self.errors.pop(0)
        return DeliveryAck(accepted=True, platform_ref=f"P-{len(self.calls)}")

    def close(self) -> None:
        pass


@pytest.fixture
def platform(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., _Platform]]:
    use_app(app)

    def install(*errors: BaseException) -> _Platform:
        fake = _Platform(*errors)
        monkeypatch.setattr(bulletin_flows, "partner_client", lambda city: (fake, 0))
        # No waiting between Prefect's retries in tests; the policy is what is checked.
        monkeypatch.setattr(
            bulletin_flows,
            "deliver_bulletin",
            bulletin_flows.deliver_bulletin.with_options(retry_delay_seconds=0),
        )
        return fake

    yield install
    use_app(None)


def _issue(make_user) -> int:
    data = BulletinCreate.model_validate(
        {
            "kind": "bulletin",
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": "沂河水情通报",
            "text": "沂河临沂段水位上涨。",
            "addressed_cities": ["xuzhou"],
            "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        }
    )
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), data)
    db.session.commit()
    return bulletin.id


def _recipient(bulletin_id: int) -> BulletinRecipient:
    db.session.expire_all()
    return db.session.scalars(
        select(BulletinRecipient).where(BulletinRecipient.bulletin_id == bulletin_id)
    ).one()


def test_a_permanent_refusal_is_not_retried_and_stops_redelivery(platform, make_user) -> None:
    fake = platform(_refusal(422))
    bulletin_id = _issue(make_user)
    assert bulletin_flows.distribute_bulletin(bulletin_id) == {"failed": 1}
    assert len(fake.calls) == 1
    recipient = _recipient(bulletin_id)
    assert recipient.given_up_at is not None and recipient.delivered_at is None
    assert "HTTP 422" in (recipient.last_error or "")
    # The scheduler does not ask again for a city the hub gave up on.
    assert bulletins.due_for_redelivery(db.session, datetime.now(UTC) + timedelta(days=1)) == []


def test_a_contract_break_is_not_retried(platform, make_user) -> None:
    fake = platform(PartnerContractError("bad ack", url="http://platform/bulletins", raw=b"{}"))
    bulletin_id = _issue(make_user)
    bulletin_flows.distribute_bulletin(bulletin_id)
    assert len(fake.calls) == 1


def test_transient_failures_and_408_are_retried(platform, make_user) -> None:
    fake = platform(
        PartnerTransientError("down", url="http://platform/bulletins", attempts=3, status=503), _refusal(408)
    )
    bulletin_id = _issue(make_user)
    assert bulletin_flows.distribute_bulletin(bulletin_id) == {"delivered": 1}
    assert len(fake.calls) == 3
    recipient = _recipient(bulletin_id)
    assert recipient.delivered_at is not None and recipient.delivery_attempts == 3


def test_a_cancellation_reaches_the_platform_that_took_the_bulletin(platform, make_user) -> None:
    fake = platform()
    issuer = make_user("ly", "linyi")
    bulletin_id = _issue(lambda *_: issuer)
    bulletin_flows.distribute_bulletin(bulletin_id)
    public_id = _recipient(bulletin_id).bulletin.public_id
    bulletins.cancel(db.session, Actor.for_user(issuer), public_id)
    db.session.commit()
    assert bulletin_flows.deliver_bulletin_cancellation(bulletin_id) == {"cancelled": 1}
    assert [c.cancelled_at is not None for c in fake.calls] == [False, True]
    assert fake.calls[1].id == public_id
    assert _recipient(bulletin_id).cancel_delivered_at is not None
    # Once told, never again; and a cancelled bulletin is not redelivered.
    assert bulletin_flows.deliver_bulletin_cancellation(bulletin_id) == {}
    assert bulletin_flows.distribute_bulletin(bulletin_id) == {}
