"""The bulletin page for its issuer: cities not reached with the reason, retry now, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from contracts.bulletins import BulletinCreate
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry


def _issue(user) -> Bulletin:
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
    bulletin = bulletins.issue(db.session, Actor.for_user(user), data)
    db.session.commit()
    return bulletin


def _audited(action: str) -> int:
    return (
        db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))
        or 0
    )


def test_issuer_sees_not_delivered_with_the_reason_and_retries_now(
    client: FlaskClient, auth, make_user
) -> None:
    bulletin = _issue(make_user("ly", "linyi"))
    make_user("xz", "xuzhou")
    recipient = bulletin.recipients[0]
    bulletins.record_delivery_failure(db.session, recipient.id, "HTTP 403: token refused", permanent=True)
    db.session.commit()
    page = f"/bulletins/{bulletin.public_id}"
    auth.login("xz")
    other = client.get(page).get_data(as_text=True)
    assert "立即重试" not in other and "token refused" not in other
    assert client.post(f"{page}/retry", data={"csrf_token": auth.csrf(page)}).status_code == 403
    assert _audited("bulletin.redelivery_requested") == 0
    auth.logout()
    auth.login("ly")
    detail = client.get(page).get_data(as_text=True)
    assert "未送达" in detail and "HTTP 403: token refused" in detail and "立即重试" in detail
    # Without the CSRF token nothing happens.
    client.post(f"{page}/retry", data={})
    assert _audited("bulletin.redelivery_requested") == 0
    client.post(f"{page}/retry", data={"csrf_token": auth.csrf(page)})
    assert _audited("bulletin.redelivery_requested") == 1
    db.session.expire_all()
    assert db.session.get(type(recipient), recipient.id).given_up_at is None
    assert "立即重试" not in client.get(page).get_data(as_text=True)


def test_issuer_cancels_from_the_page(client: FlaskClient, auth, make_user) -> None:
    bulletin = _issue(make_user("ly", "linyi"))
    make_user("xz", "xuzhou")
    page = f"/bulletins/{bulletin.public_id}"
    auth.login("xz")
    assert "撤销此通报" not in client.get(page).get_data(as_text=True)
    client.post(f"{page}/cancel", data={"csrf_token": auth.csrf(page)})
    db.session.expire_all()
    assert db.session.get(Bulletin, bulletin.id).cancelled_at is None
    auth.logout()
    auth.login("ly")
    assert "撤销此通报" in client.get(page).get_data(as_text=True)
    client.post(f"{page}/cancel", data={})
    db.session.expire_all()
    assert db.session.get(Bulletin, bulletin.id).cancelled_at is None
    assert client.post(f"{page}/cancel", data={"csrf_token": auth.csrf(page)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Bulletin, bulletin.id).cancelled_at is not None
    assert _audited("bulletin.cancelled") == 1
    detail = client.get(page).get_data(as_text=True)
    assert "已撤销" in detail and "撤销此通报" not in detail
