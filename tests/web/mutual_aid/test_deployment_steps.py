"""Extensions and returns on the pages and through the API: asked, answered, counted, refused in Chinese."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask.testing import FlaskClient

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry
from hub.mutual_aid import services
from hub.mutual_aid.models import AidCommitment, AidResource
from tests.hub.mutual_aid.factories import CONTACT, entry, line

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _on_scene(make_user, quantity: int = 6) -> tuple[AidCommitment, AidResource, str]:
    """Return a commitment of Xuzhou's pumps on scene in Linyi, its entry and its request page."""
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    linyi = Actor.for_user(make_user("ly", "linyi"))
    pumps = services.register_entry(db.session, xuzhou, entry())
    request = services.create_request(
        db.session, linyi, title="沂河洪水", lines=[line(quantity=quantity)], contact=CONTACT
    )
    offer = services.make_offer(db.session, xuzhou, request.lines[0].id, pumps.id, Decimal(quantity))
    services.accept(db.session, linyi, offer.id)
    services.authorise(db.session, xuzhou, offer.id, "XZ-9")
    services.dispatch(db.session, xuzhou, offer.id)
    services.arrive(db.session, linyi, offer.id)
    db.session.commit()
    return offer, pumps, f"/aid/requests/{request.public_id}"


def _local(moment) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _step(client: FlaskClient, auth, page: str, commitment_id: int, step: str, **form: str):
    return client.post(
        f"/aid/commitments/{commitment_id}/{step}", data={**form, "csrf_token": auth.csrf(page)}
    )


def _flash(client: FlaskClient, page: str) -> str:
    return client.get(page).get_data(as_text=True)


def test_an_extension_is_asked_granted_and_refused_on_the_page(client: FlaskClient, auth, make_user) -> None:
    offer, _, page = _on_scene(make_user)
    end = offer.end_at
    auth.login("ly")
    body = client.get(page).get_data(as_text=True)
    assert 'data-step="extend"' in body and "申请延长" in body and 'data-step="release"' in body
    # An end no later than the current one is refused, in Chinese, and nothing changes.
    assert (
        _step(client, auth, page, offer.id, "extend", new_end=_local(end - timedelta(hours=2))).status_code
        == 302
    )
    assert "延长后的结束时间须晚于当前结束时间" in _flash(client, page)
    db.session.expire_all()
    assert db.session.get(AidCommitment, offer.id).state == "arrived"
    wanted = end + timedelta(hours=24)
    assert _step(client, auth, page, offer.id, "extend", new_end=_local(wanted)).status_code == 302
    db.session.expire_all()
    asked = db.session.get(AidCommitment, offer.id)
    assert asked.state == "extension_asked" and asked.extension_until == wanted.replace(
        second=0, microsecond=0
    )
    body = client.get(page).get_data(as_text=True)
    assert "申请延长至" in body and 'data-step="answer-extension"' not in body
    # The page and Xuzhou's desk say the request now waits on Xuzhou's answer, until the deployment ends.
    assert 'data-city="xuzhou" data-kind="extension"' in body and "答复延期申请" in body
    auth.logout()

    auth.login("xz")
    assert "支援延期待答复" in client.get("/").get_data(as_text=True)
    body = client.get(page).get_data(as_text=True)
    assert 'data-step="answer-extension"' in body and 'data-step="refuse-extension"' in body
    assert _local(asked.extension_until) in body  # the grant form starts at the end asked for
    granted = asked.extension_until + timedelta(hours=12)
    answer = _step(client, auth, page, offer.id, "answer-extension", grant="1", new_end=_local(granted))
    assert answer.status_code == 302
    db.session.expire_all()
    done = db.session.get(AidCommitment, offer.id)
    assert (done.state, done.end_at, done.extension_until) == ("arrived", granted, None)
    auth.logout()

    # Asked again and refused: the end stays.
    auth.login("ly")
    _step(client, auth, page, offer.id, "extend", new_end=_local(granted + timedelta(days=1)))
    auth.logout()
    auth.login("xz")
    assert _step(client, auth, page, offer.id, "answer-extension", grant="0").status_code == 302
    db.session.expire_all()
    refused = db.session.get(AidCommitment, offer.id)
    assert (refused.state, refused.end_at, refused.extension_until) == ("arrived", granted, None)
    actions = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.entity_id == offer.id).order_by(AuditEntry.id)
    ).all()
    assert actions.count("aid_commitment.ask_extension") == 2
    assert actions.count("aid_commitment.answer_extension") == 2


def test_the_owner_asks_for_the_return_and_the_requester_keeps_or_releases(
    client: FlaskClient, auth, make_user
) -> None:
    offer, _, page = _on_scene(make_user)
    auth.login("xz")
    assert _step(client, auth, page, offer.id, "request-return").status_code == 302
    auth.logout()
    auth.login("ly")
    body = client.get(page).get_data(as_text=True)
    assert "申请归还" in body and 'data-step="refuse-return"' in body and 'data-step="release"' in body
    _step(client, auth, page, offer.id, "refuse-return")
    db.session.expire_all()
    assert db.session.get(AidCommitment, offer.id).state == "arrived"


def test_a_return_is_confirmed_with_counts_that_add_up(client: FlaskClient, auth, make_user) -> None:
    offer, pumps, page = _on_scene(make_user)
    auth.login("ly")
    _step(client, auth, page, offer.id, "release")
    auth.logout()
    auth.login("xz")
    body = client.get(page).get_data(as_text=True)
    assert 'data-step="return"' in body and "派出 6" in body and "确认归还，恢复可用" in body
    # Released, on its way home: no longer on scene, not yet returned, but counted.
    assert 'data-stage="on_scene">0<' in body and 'data-stage="released">6<' in body
    assert 'data-stage="returned">0<' in body
    assert '<rect class="stage-released" x="0.0" y="0" width="100.0" height="10">' in body
    db.session.expire_all()
    assert db.session.get(AidResource, pumps.id).available == Decimal(4)  # still deployed until confirmed
    # 4 + 1 + 0 is not the 6 dispatched: refused in Chinese, nothing changed.
    answer = _step(client, auth, page, offer.id, "return", returned="4", consumed="1", lost="0")
    assert answer.status_code == 302
    assert "归还、消耗与损失之和须等于派出数量" in _flash(client, page)
    db.session.expire_all()
    assert db.session.get(AidCommitment, offer.id).state == "released"
    assert db.session.get(AidResource, pumps.id).deployed == Decimal(6)
    answer = _step(client, auth, page, offer.id, "return", returned="4", consumed="1", lost="1")
    assert answer.status_code == 302
    db.session.expire_all()
    done = db.session.get(AidCommitment, offer.id)
    assert (done.state, done.returned, done.consumed, done.lost) == ("returned", 4, 1, 1)
    back = db.session.get(AidResource, pumps.id)
    assert (back.on_hand, back.reserved, back.deployed, back.available) == (8, 0, 0, 8)
    body = client.get(page).get_data(as_text=True)
    assert "已归建" in body and "归还 4 · 消耗 1 · 损失 1" in body
    assert 'data-stage="returned">4<' in body and 'data-stage="released">0<' in body
    assert '<rect class="stage-returned" x="0.0" y="0" width="66.7" height="10">' in body  # 4 of 6


def test_a_step_not_possible_now_is_refused_in_chinese(client: FlaskClient, auth, make_user) -> None:
    offer, _, page = _on_scene(make_user)
    auth.login("ly")
    assert _step(client, auth, page, offer.id, "accept").status_code == 302
    assert "该报价或承诺当前不能执行此步骤" in _flash(client, page)
    db.session.expire_all()
    assert db.session.get(AidCommitment, offer.id).state == "arrived"


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_asks_answers_and_returns_with_counts(client: FlaskClient, make_user, make_token) -> None:
    offer, pumps, _ = _on_scene(make_user)
    linyi, xuzhou = _h(make_token("linyi")), _h(make_token("xuzhou"))
    url = f"/api/v1/aid/commitments/{offer.id}"
    wanted = (offer.end_at + timedelta(hours=24)).isoformat()
    asked = client.post(f"{url}/extend", json={"new_end": wanted}, headers=linyi)
    assert asked.status_code == 200, asked.get_json()
    assert asked.get_json()["state"] == "extension_asked" and asked.get_json()["extension_until"] == wanted
    assert client.post(f"{url}/answer-extension", json={"new_end": wanted}, headers=linyi).status_code == 403
    granted = client.post(f"{url}/answer-extension", json={"new_end": wanted}, headers=xuzhou).get_json()
    assert (granted["state"], granted["end"], granted["extension_until"]) == ("arrived", wanted, None)
    assert client.post(f"{url}/release", headers=linyi).status_code == 200
    request_url = f"/api/v1/aid/requests/{offer.request.public_id}"
    (line,) = client.get(request_url, headers=linyi).get_json()["progress"]
    assert (line["on_scene"], line["released"], line["returned"]) == ("0.000", "6.000", "0.000")
    unbalanced = client.post(f"{url}/return", json={"returned": "1", "lost": "1"}, headers=xuzhou)
    assert unbalanced.status_code == 422 and "dispatched" in unbalanced.get_json()["error"]["message"]
    done = client.post(f"{url}/return", json={"returned": "5", "lost": "1"}, headers=xuzhou).get_json()
    assert (done["state"], done["dispatched"], done["returned"], done["consumed"], done["lost"]) == (
        "returned",
        "6.000",
        "5.000",
        "0.000",
        "1.000",
    )
    db.session.expire_all()
    assert db.session.get(AidResource, pumps.id).available == Decimal(9)
