"""CAP Private and Restricted alerts reach only whom they name; Update and Cancel by <references>."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from contracts.cap import CapMsgType, CapScope, parse_cap
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.kernel.models import AuditEntry, FlowRequest
from tests.web.api.test_bulletin_hardening_api import _cap
from tests.web.api.test_exchange_api import _auth

HOUR = timedelta(hours=1)


def _count(model: type, *where: object) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _alert(
    client: FlaskClient, token: str, identifier: str, *, scope: bytes = b"<scope>Public</scope>"
) -> bytes:
    """A CAP alert as a partner system would post it: built from a hub warning, given a new
    identifier and the scope elements asked for."""
    cap = _cap(client, token, expires_at=(datetime.now(UTC) + HOUR).isoformat(), addressed_cities=["xuzhou"])
    cap = re.sub(
        rb"<identifier>[^<]+</identifier>", b"<identifier>" + identifier.encode() + b"</identifier>", cap
    )
    cap = re.sub(rb"<headline>[^<]+</headline>", f"<headline>{identifier} 预警</headline>".encode(), cap)
    return cap.replace(b"<scope>Public</scope>", scope)


def _post(client: FlaskClient, token: str, cap: bytes):
    return client.post(
        "/api/v1/warnings/cap", data=cap, content_type="application/cap+xml", headers=_auth(token)
    )


def _reference(cap: bytes) -> str:
    def text(name: str) -> str:
        return re.search(rb"<" + name.encode() + rb">([^<]+)<", cap).group(1).decode()  # type: ignore[union-attr]

    return f"{text('sender')},{text('identifier')},{text('sent')}"


def _change(
    cap: bytes, msg_type: str, identifier: str, *references: str, headline: str | None = None
) -> bytes:
    changed = re.sub(
        rb"<identifier>[^<]+</identifier>", b"<identifier>" + identifier.encode() + b"</identifier>", cap
    )
    changed = changed.replace(
        b"<msgType>Alert</msgType>",
        f"<msgType>{msg_type}</msgType><references>{' '.join(references)}</references>".encode(),
    )
    if headline is not None:
        changed = re.sub(rb"<headline>[^<]+</headline>", f"<headline>{headline}</headline>".encode(), changed)
    return changed


def _sees(client: FlaskClient, token: str, bulletin_id: str) -> dict[str, bool]:
    return {
        "list": any(
            b["id"] == bulletin_id
            for b in client.get("/api/v1/bulletins", headers=_auth(token)).json["items"]
        ),
        "get": client.get(f"/api/v1/bulletins/{bulletin_id}", headers=_auth(token)).status_code == 200,
        "cap": client.get(f"/api/v1/bulletins/{bulletin_id}/cap", headers=_auth(token)).status_code == 200,
        "feed": bulletin_id
        in client.get("/api/v1/cap/feed.atom", headers=_auth(token)).get_data(as_text=True),
    }


ALL = {"list": True, "get": True, "cap": True, "feed": True}
NONE = {"list": False, "get": False, "cap": False, "feed": False}


def test_a_private_alert_reaches_only_the_cities_it_addresses(
    client: FlaskClient, make_token, auth, make_user
) -> None:
    linyi, xuzhou, heze, suqian = (make_token(c) for c in ("linyi", "xuzhou", "heze", "suqian"))
    # Addressed to Xuzhou by its slug and to Heze by its GB/T 2260 division code (371700), and to
    # an address outside the region, which is kept but reaches no city.
    addresses = b'<addresses>xuzhou 371700 "Jinan EOC"</addresses>'
    cap = _alert(client, linyi, "PRIVATE-1", scope=b"<scope>Private</scope>" + addresses)
    response = _post(client, linyi, cap)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["scope"], sorted(body["addressed_cities"])) == ("private", ["heze", "xuzhou"])
    assert _sees(client, xuzhou, body["id"]) == ALL
    assert _sees(client, heze, body["id"]) == ALL
    assert _sees(client, linyi, body["id"]) == ALL
    assert _sees(client, suqian, body["id"]) == NONE
    # Nor in an unaddressed city's pages.
    make_user("sq", "suqian")
    auth.login("sq")
    assert client.get(f"/bulletins/{body['id']}").status_code == 404
    assert "PRIVATE-1" not in client.get("/bulletins").get_data(as_text=True)
    auth.logout()
    # It leaves the hub as it came: Private, with the same addresses.
    out = parse_cap(client.get(f"/api/v1/bulletins/{body['id']}/cap", headers=_auth(heze)).data)
    assert out.scope is CapScope.PRIVATE
    assert out.addressees() == ("xuzhou", "371700", "Jinan EOC")


def test_a_restricted_alert_with_addresses_reaches_only_them(client: FlaskClient, make_token) -> None:
    linyi, xuzhou, heze = make_token("linyi"), make_token("xuzhou"), make_token("heze")
    scope = (
        b"<scope>Restricted</scope><restriction>duty offices only</restriction><addresses>heze</addresses>"
    )
    response = _post(client, linyi, _alert(client, linyi, "RESTRICTED-1", scope=scope))
    assert response.status_code == 201, response.json
    assert (response.json["scope"], response.json["addressed_cities"]) == ("restricted", ["heze"])
    assert _sees(client, heze, response.json["id"]) == ALL
    # Xuzhou is in the alert's geocodes, but not among its addressees.
    assert _sees(client, xuzhou, response.json["id"]) == NONE
    out = parse_cap(client.get(f"/api/v1/bulletins/{response.json['id']}/cap", headers=_auth(heze)).data)
    assert (out.scope, out.addressees()) == (CapScope.RESTRICTED, ("heze",))


def test_a_private_alert_naming_no_other_member_city_is_refused(client: FlaskClient, make_token) -> None:
    linyi = make_token("linyi")
    count = _count(Bulletin)
    for n, addresses in enumerate((b"linyi", b"371300", b"someone-else 999999")):
        scope = b"<scope>Private</scope><addresses>" + addresses + b"</addresses>"
        response = _post(client, linyi, _alert(client, linyi, f"PRIVATE-NOONE-{n}", scope=scope))
        assert response.status_code == 422, response.json
        assert "names no other member city" in response.json["error"]["message"]
    assert _count(Bulletin) == count + 3  # only the hub warnings the alerts were built from


def test_a_private_bulletin_from_the_api_leaves_as_a_private_alert(client: FlaskClient, make_token) -> None:
    linyi, suqian = make_token("linyi"), make_token("suqian")
    cap = _cap(client, linyi)  # public
    assert b"<scope>Public</scope>" in cap
    from tests.web.api.test_exchange_api import _bulletin

    created = client.post(
        "/api/v1/bulletins",
        json=_bulletin(scope="private", addressed_cities=["xuzhou", "heze"]),
        headers=_auth(linyi),
    )
    assert created.status_code == 201, created.json
    assert _sees(client, suqian, created.json["id"]) == NONE
    out = parse_cap(client.get(f"/api/v1/bulletins/{created.json['id']}/cap", headers=_auth(linyi)).data)
    assert (out.scope, out.addressees()) == (CapScope.PRIVATE, ("xuzhou", "heze"))


def test_a_cap_update_changes_the_warning_for_every_city_that_got_it(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    cap = _alert(client, linyi, "ORIGINAL-1")
    created = _post(client, linyi, cap)
    assert created.status_code == 201, created.json
    warning = db.session.scalars(select(Bulletin).where(Bulletin.cap_identifier == "ORIGINAL-1")).one()
    for recipient in warning.recipients:
        bulletins.record_delivery(db.session, recipient.id, platform_ref="p-1")
    db.session.commit()
    requests = _count(FlowRequest, FlowRequest.flow_name == bulletins.DISTRIBUTE)
    update = _change(cap, "Update", "UPDATE-1", _reference(cap), headline="沂河洪水红色预警（更新）")
    # Only the city that issued the warning may update it.
    assert _post(client, xuzhou, update).status_code == 403
    response = _post(client, linyi, update)
    assert response.status_code == 200, response.json
    assert response.json["id"] == created.json["id"]
    assert response.json["title"] == "沂河洪水红色预警（更新）"
    db.session.expire_all()
    assert [r.delivered_at for r in warning.recipients] == [None] * len(warning.recipients)
    assert _count(FlowRequest, FlowRequest.flow_name == bulletins.DISTRIBUTE) == requests + 1
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "bulletin.updated")).one()
    assert audit.before["title"] == "ORIGINAL-1 预警" and audit.after["title"] == "沂河洪水红色预警（更新）"  # type: ignore[index]
    assert (
        client.get(f"/api/v1/bulletins/{created.json['id']}", headers=_auth(xuzhou))
        .json["title"]
        .endswith("（更新）")
    )
    assert _count(Bulletin, Bulletin.cap_identifier == "UPDATE-1") == 0
    # The same Update again is a duplicate; a later one may name the Update itself.
    again = _post(client, linyi, update)
    assert again.status_code == 409 and created.json["id"] in again.json["error"]["message"]
    second = _change(cap, "Update", "UPDATE-2", _reference(update), headline="第二次更新")
    assert _post(client, linyi, second).json["title"] == "第二次更新"


def test_a_cap_cancel_cancels_the_warning(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    cap = _alert(client, linyi, "ORIGINAL-2")
    created = _post(client, linyi, cap)
    cancel = _change(cap, "Cancel", "CANCEL-2", _reference(cap))
    assert _post(client, xuzhou, cancel).status_code == 403
    response = _post(client, linyi, cancel)
    assert response.status_code == 200, response.json
    assert response.json["cancelled"] is True and response.json["id"] == created.json["id"]
    assert _count(FlowRequest, FlowRequest.flow_name == bulletins.CANCEL) == 1
    assert _count(AuditEntry, AuditEntry.action == "bulletin.cancelled") == 1
    assert created.json["id"] not in client.get("/api/v1/cap/feed.atom", headers=_auth(xuzhou)).get_data(
        as_text=True
    )
    out = parse_cap(client.get(f"/api/v1/bulletins/{created.json['id']}/cap", headers=_auth(xuzhou)).data)
    assert out.msg_type is CapMsgType.CANCEL
    # A cancelled warning is not updated.
    late = _change(cap, "Update", "UPDATE-LATE", _reference(cap))
    assert _post(client, linyi, late).status_code == 409


def test_references_the_hub_does_not_hold_are_named(client: FlaskClient, make_token) -> None:
    linyi = make_token("linyi")
    cap = _alert(client, linyi, "ORIGINAL-3")
    assert _post(client, linyi, cap).status_code == 201
    unknown = "someone@example.org,NEVER-SEEN,2026-11-01T08:00:00+08:00"
    for msg_type in ("Update", "Cancel"):
        response = _post(client, linyi, _change(cap, msg_type, f"{msg_type}-X", _reference(cap), unknown))
        assert response.status_code == 422, response.json
        assert "NEVER-SEEN" in response.json["error"]["message"]
        assert "ORIGINAL-3" not in response.json["error"]["message"]
    # A Test or Exercise Cancel does not cancel a live warning.
    for status in ("Test", "Exercise"):
        drill = _change(cap, "Cancel", f"CANCEL-{status}", _reference(cap)).replace(
            b"<status>Actual</status>", f"<status>{status}</status>".encode()
        )
        response = _post(client, linyi, drill)
        assert response.status_code == 422, response.json
        assert status in response.json["error"]["message"]
    assert (
        db.session.scalars(select(Bulletin).where(Bulletin.cap_identifier == "ORIGINAL-3")).one().cancelled_at
        is None
    )
