"""The audit trail through the API: a city's platform reads its own city's entries, page by page."""

from __future__ import annotations

from flask.testing import FlaskClient

from contracts.bulletins import ReceiptCreate
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.kernel.actors import Actor
from tests.hub.bulletins.test_services import _data


def test_a_platform_reads_its_own_citys_audit_trail(client: FlaskClient, make_token, make_user) -> None:
    bulletin = bulletins.issue(db.session, Actor.for_user(make_user("ly", "linyi")), _data())
    bulletins.record_receipt(
        db.session,
        Actor.for_user(make_user("xz", "xuzhou")),
        bulletin.public_id,
        ReceiptCreate(acknowledged_by="张伟"),
    )
    db.session.commit()
    xuzhou = {"Authorization": f"Bearer {make_token('xuzhou')}"}
    items = client.get("/api/v1/audit", headers=xuzhou).json["items"]
    assert items and all(e["city"] == "xuzhou" for e in items)
    signed = next(e for e in items if e["action"] == "bulletin.receipt")
    assert signed["after"]["acknowledged_by"] == "张伟" and signed["after"]["signed_via"] == "hub"
    heze = {"Authorization": f"Bearer {make_token('heze')}"}
    assert all(
        e["action"] != "bulletin.receipt" for e in client.get("/api/v1/audit", headers=heze).json["items"]
    )
    assert client.get("/api/v1/audit?limit=0", headers=xuzhou).status_code == 422
    assert len(client.get("/api/v1/audit?limit=1", headers=xuzhou).json["items"]) == 1
