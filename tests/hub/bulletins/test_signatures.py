"""A person's signature (签收) is not a platform's delivery (平台已接收); "late" follows the person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.bulletins import ReceiptCreate
from hub.app import settings_of
from hub.bulletins import desk as bulletin_desk
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin, BulletinRecipient
from hub.extensions import db
from hub.kernel import desk
from hub.kernel.actors import Actor
from hub.kernel.models import ApiToken
from hub.kernel.types import utcnow
from tests.hub.bulletins.test_services import _data


def _issue(make_user, **overrides: object) -> Bulletin:
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), _data(**overrides))
    db.session.commit()
    return bulletin


def _xuzhou(bulletin: Bulletin) -> BulletinRecipient:
    return next(r for r in bulletin.recipients if r.city.slug == "xuzhou")


def test_a_delivered_bulletin_stays_urgent_on_the_desk_until_a_person_signs(app, make_user) -> None:
    bulletin = _issue(make_user)
    xuzhou = _xuzhou(bulletin)
    settings = settings_of(app)
    bulletins.record_delivery(db.session, xuzhou.id, platform_ref="XZ-1")
    db.session.commit()
    assert xuzhou.delivered_at is not None and xuzhou.receipt_at is None

    items = desk.for_city(db.session, xuzhou.city_id, settings)
    owed = [i for i in items.urgent if i.key == f"bulletins:receipt:{xuzhou.id}:owed"]
    assert owed and owed[0].alert and owed[0] in items.alerting

    officer = Actor.for_user(make_user("xz-duty", "xuzhou"))
    bulletins.record_receipt(db.session, officer, bulletin.public_id, ReceiptCreate(acknowledged_by="张伟"))
    db.session.commit()
    assert (xuzhou.acknowledged_by, xuzhou.signed_via) == ("张伟", "hub")
    assert not [
        i for i in desk.for_city(db.session, xuzhou.city_id, settings).urgent if i.key and "receipt" in i.key
    ]


def test_late_means_no_person_signed_whatever_the_platform_said(app, make_user) -> None:
    bulletin = _issue(make_user)
    xuzhou = _xuzhou(bulletin)
    for recipient in bulletin.recipients:
        bulletins.record_delivery(db.session, recipient.id, platform_ref="P")
    bulletin.receipt_deadline = datetime.now(UTC) - timedelta(minutes=1)
    db.session.commit()
    assert bulletins.is_late(xuzhou, utcnow())
    # Both platforms took it; neither city signed: both are reminded.
    assert bulletins.chase_late_receipts(db.session) == {"reminded": 2, "flagged": 0}
    key = f"bulletins:receipt:{xuzhou.id}:late"
    assert key in [i.key for i in bulletin_desk.urgent(db.session, xuzhou.city_id, settings_of(app))]
    bulletins.record_receipt(
        db.session,
        Actor.for_user(make_user("xz", "xuzhou")),
        bulletin.public_id,
        ReceiptCreate(acknowledged_by="张伟"),
    )
    assert not bulletins.is_late(xuzhou, utcnow())


def test_a_signature_passed_on_by_the_citys_platform_says_so(make_user, city) -> None:
    bulletin = _issue(make_user)
    token = ApiToken(city=city("xuzhou"), name="xuzhou-platform", token_hash="x" * 64)
    db.session.add(token)
    db.session.flush()
    recipient, created = bulletins.record_receipt(
        db.session,
        Actor.for_token(token),
        bulletin.public_id,
        ReceiptCreate(acknowledged_by="徐州值班员李娜"),
    )
    assert created and (recipient.acknowledged_by, recipient.signed_via) == ("徐州值班员李娜", "platform")


def test_an_exercise_bulletin_waits_in_the_exercise_lane_and_never_alerts(app, make_user) -> None:
    bulletin = _issue(make_user, exercise=True)
    xuzhou = _xuzhou(bulletin)
    found = desk.for_city(db.session, xuzhou.city_id, settings_of(app))
    assert not [i for i in found.urgent if i.key and i.key.startswith("bulletins:")]
    lane = [i for i in found.exercise if i.key == f"bulletins:receipt:{xuzhou.id}:owed"]
    assert lane and not lane[0].alert
