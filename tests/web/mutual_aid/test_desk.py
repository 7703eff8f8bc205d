"""The desk shows what a city owes in mutual aid; the request page shows each line's progress."""

from __future__ import annotations

from decimal import Decimal

from flask.testing import FlaskClient

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.mutual_aid import services
from tests.hub.mutual_aid.factories import CONTACT, entry, line


def test_desk_lists_the_offer_to_accept_with_its_countdown(client: FlaskClient, auth, make_user) -> None:
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    linyi = Actor.for_user(make_user("ly", "linyi"))
    pumps = services.register_entry(db.session, xuzhou, entry())
    request = services.create_request(
        db.session, linyi, title="沂河洪水", lines=[line(quantity=8)], contact=CONTACT
    )
    services.make_offer(db.session, xuzhou, request.lines[0].id, pumps.id, Decimal(3))
    db.session.commit()
    auth.login("ly")
    desk = client.get("/").get_data(as_text=True)
    assert "支援报价待接受" in desk and "沂河洪水" in desk and "剩余" in desk
    assert f"/aid/requests/{request.public_id}" in desk
    page = client.get(f"/aid/requests/{request.public_id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'data-line="L1"' in body
    assert 'data-stage="requested">8 ' in body and 'data-stage="offered">3<' in body
    auth.logout()
    auth.login("xz")
    assert "支援报价待接受" not in client.get("/").get_data(as_text=True)
