"""The mutual-aid pages: registry, CSV import, a new request, one-click offer and the right buttons."""

from __future__ import annotations

import io
from decimal import Decimal

import sqlalchemy as sa
from flask.testing import FlaskClient

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.mutual_aid import services
from hub.mutual_aid.models import AidCommitment, AidRequest, AidResource
from tests.hub.mutual_aid.factories import CONTACT, entry, line

ENTRY_FORM = {
    "external_id": "tent-9",
    "type_code": "supply.tent.summer",
    "grade": "",
    "name": "单帐篷",
    "quantity": "200",
    "lat": "34.26",
    "lon": "117.18",
    "place": "徐州市储备库",
    "status": "available",
    "contact_name": "张伟",
    "contact_phone": "0516-8300000",
    "daily_rate": "10",
    "personnel": "0",
}


def test_nav_and_registry_add_edit_and_import(client: FlaskClient, auth, make_user) -> None:
    make_user("xz", "xuzhou")
    make_user("ly", "linyi")
    auth.login("xz")
    assert "支援" in client.get("/aid").get_data(as_text=True)
    assert 'href="/aid"' in client.get("/").get_data(as_text=True)
    page = "/aid/registry/new"
    answer = client.post(page, data={**ENTRY_FORM, "csrf_token": auth.csrf(page)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    tent = db.session.scalars(sa.select(AidResource)).one()
    assert (tent.on_hand, tent.verified_by, tent.owner_city.slug) == (Decimal(200), "xz", "xuzhou")
    listing = client.get("/aid/registry").get_data(as_text=True)
    assert 'data-entry="tent-9"' in listing
    csv = (
        "id,type_code,grade,name,quantity,lat,lon,contact_name,contact_phone\n"
        "boat-a,equipment.boat.assault,,冲锋舟,12,34.3,117.2,李四,0516-8300001\n"
    )
    answer = client.post(
        "/aid/registry/import",
        data={"file": (io.BytesIO(csv.encode()), "r.csv"), "csrf_token": auth.csrf("/aid/registry")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AidResource)) == 2
    auth.logout()
    auth.login("ly")
    edit = f"/aid/registry/{tent.id}/edit"
    assert client.get(edit).status_code == 403
    assert (
        client.post(edit, data={**ENTRY_FORM, "quantity": "1", "csrf_token": auth.csrf("/aid")}).status_code
        == 403
    )
    db.session.expire_all()
    assert db.session.get(AidResource, tent.id).on_hand == Decimal(200)


def test_new_request_form_asks_for_the_first_ring(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    page = "/aid/requests/new"
    form = {
        "title": "沂河洪水",
        "type_code": "equipment.pump.drainage",
        "min_grade": "",
        "quantity": "20",
        "needed_by": "2026-12-30T08:00",
        "duration_hours": "48",
        "report_to_place": "兰山区防汛指挥部",
        "report_to_lat": "35.1",
        "report_to_lon": "118.35",
        "contact_name": "王强",
        "contact_phone": "0539-8000000",
        "csrf_token": auth.csrf(page),
    }
    answer = client.post(page, data=form)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    created = db.session.scalars(sa.select(AidRequest)).one()
    assert (
        created.lines[0].quantity == Decimal(20) and created.lines[0].needed_by.hour == 0
    )  # 08:00 in Shanghai
    assert "沂河洪水" in client.get("/aid").get_data(as_text=True)


def test_each_city_sees_and_may_press_only_its_own_buttons(client: FlaskClient, auth, make_user) -> None:
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    linyi = Actor.for_user(make_user("ly", "linyi"))
    make_user("zz", "zaozhuang")
    pumps = services.register_entry(db.session, xuzhou, entry())
    request = services.create_request(
        db.session, linyi, title="沂河洪水", lines=[line(quantity=6)], contact=CONTACT
    )
    db.session.commit()
    page = f"/aid/requests/{request.public_id}"

    auth.login("xz")
    body = client.get(page).get_data(as_text=True)
    assert "按支援包报价" in body
    offer_url = f"/aid/lines/{request.lines[0].id}/offer"
    assert (
        client.post(offer_url, data={"resource_id": pumps.id, "csrf_token": auth.csrf(page)}).status_code
        == 302
    )
    offer = db.session.scalars(sa.select(AidCommitment)).one()
    assert offer.quantity == Decimal(6)
    body = client.get(page).get_data(as_text=True)
    assert 'data-step="withdraw"' in body and 'data-step="accept"' not in body
    # The owner may not accept its own offer: 403 and nothing changed.
    accept = f"/aid/commitments/{offer.id}/accept"
    assert client.post(accept, data={"csrf_token": auth.csrf(page)}).status_code == 403
    auth.logout()

    auth.login("zz")
    assert 'data-step="' not in client.get(page).get_data(as_text=True)
    assert client.post(accept, data={"csrf_token": auth.csrf(page)}).status_code == 403
    db.session.expire_all()
    assert db.session.get(AidCommitment, offer.id).state == "offered"
    auth.logout()

    auth.login("ly")
    assert 'data-step="accept"' in client.get(page).get_data(as_text=True)
    assert client.post(accept, data={"csrf_token": auth.csrf(page)}).status_code == 302
    auth.logout()
    auth.login("xz")
    authorise = f"/aid/commitments/{offer.id}/authorise"
    answer = client.post(authorise, data={"order_number": "XZ-1", "csrf_token": auth.csrf(page)})
    assert answer.status_code == 302
    db.session.expire_all()
    done = db.session.get(AidCommitment, offer.id)
    assert (done.state, done.order_number) == ("authorised", "XZ-1")
    assert db.session.get(AidResource, pumps.id).reserved == Decimal(6)


def test_the_linyi_flood_demo_starts_only_in_the_demo_and_for_linyi(
    app, client: FlaskClient, auth, make_user
) -> None:
    from dataclasses import replace

    from hub.mutual_aid import demo

    make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    auth.login("ly")
    assert 'data-demo="linyi-flood"' not in client.get("/aid").get_data(as_text=True)
    assert client.post("/aid/demo/linyi-flood", data={"csrf_token": auth.csrf("/aid")}).status_code == 404
    app.extensions["hub_settings"] = replace(app.extensions["hub_settings"], demo=True)
    assert 'data-demo="linyi-flood"' in client.get("/aid").get_data(as_text=True)
    answer = client.post("/aid/demo/linyi-flood", data={"csrf_token": auth.csrf("/aid")})
    assert answer.status_code == 302
    request = db.session.scalars(sa.select(AidRequest)).one()
    assert request.title == demo.TITLE and answer.location.endswith(f"/aid/requests/{request.public_id}")
    auth.logout()
    auth.login("xz")
    assert 'data-demo="linyi-flood"' not in client.get("/aid").get_data(as_text=True)
    assert client.post("/aid/demo/linyi-flood", data={"csrf_token": auth.csrf("/aid")}).status_code == 403


def test_every_request_status_is_shown_in_the_readers_language(client: FlaskClient, auth, make_user) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    words = {
        "open": ("征集中", "Sourcing"),
        "closed": ("已关闭", "Closed"),
        "unfilled": ("未能满足", "Unfilled"),
        "cancelled": ("已取消", "Cancelled"),
    }
    for status in words:
        request = services.create_request(
            db.session, linyi, title=f"请求-{status}", lines=[line()], contact=CONTACT
        )
        request.status = status
    db.session.commit()
    auth.login("ly")
    for locale, column in (("zh_CN", 0), ("en", 1)):
        client.post(f"/locale/{locale}", data={"csrf_token": auth.csrf("/"), "next": "/"})
        listing = client.get("/aid").get_data(as_text=True)
        for status, names in words.items():
            row = listing.split(f"请求-{status}</a>", 1)[1].split("</tr>", 1)[0]
            assert f"<td>{names[column]}</td>" in row, (locale, status, row)
            assert f"<td>{status}</td>" not in row
        detail = services.requests_for(db.session, linyi.city_id)[0]
        page = client.get(f"/aid/requests/{detail.public_id}").get_data(as_text=True)
        assert words[detail.status][column] in page
