"""Consultation API: call, answer own city only, minutes 409 once signed, action items, calendar feeds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import recurring_ical_events
from flask.testing import FlaskClient
from icalendar import Calendar


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _call(client: FlaskClient, token: str) -> dict:
    response = client.post(
        "/api/v1/consultations",
        json={
            "title": "沂河洪水会商",
            "starts_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
            "invited_cities": ["xuzhou", "heze"],
        },
        headers=_auth(token),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_whole_session_through_the_api(client: FlaskClient, make_token) -> None:
    linyi, xuzhou, suqian = make_token("linyi"), make_token("xuzhou"), make_token("suqian")
    meeting = _call(client, linyi)
    base = f"/api/v1/consultations/{meeting['id']}"
    answered = client.post(f"{base}/answer", json={"answer": "accept"}, headers=_auth(xuzhou))
    assert answered.get_json()["answer"] == "accept"
    assert client.post(f"{base}/answer", json={"answer": "accept"}, headers=_auth(suqian)).status_code == 404
    assert client.get(base, headers=_auth(suqian)).status_code == 404
    saved = client.post(
        f"{base}/minutes", json={"base_revision": 0, "content": "一、汛情"}, headers=_auth(xuzhou)
    )
    assert saved.status_code == 201 and saved.get_json()["revision"] == 1
    due = (date.today() + timedelta(days=5)).isoformat()
    resolution = client.post(
        f"{base}/resolutions",
        json={
            "text": "加强巡查",
            "decision_mode": "consensus",
            "follow_up": True,
            "action_items": [{"owner_city": "xuzhou", "title": "巡查", "due_on": due}],
        },
        headers=_auth(linyi),
    )
    assert resolution.status_code == 201
    (item,) = resolution.get_json()["action_items"]
    close = {"evidence": {"note": "已巡查"}}
    assert (
        client.post(f"/api/v1/action-items/{item['id']}/close", json=close, headers=_auth(linyi)).status_code
        == 403
    )
    closed = client.post(f"/api/v1/action-items/{item['id']}/close", json=close, headers=_auth(xuzhou))
    assert closed.get_json()["state"] == "closed"
    assert client.post(f"{base}/sign", headers=_auth(xuzhou)).status_code == 403
    assert client.post(f"{base}/sign", headers=_auth(linyi)).status_code == 200
    # Nothing in these minutes is marked public, so there is nothing to publish.
    assert client.post(f"{base}/publish", headers=_auth(xuzhou)).status_code == 403
    assert client.post(f"{base}/publish", headers=_auth(linyi)).status_code == 422
    again = client.post(f"{base}/minutes", json={"base_revision": 1, "content": "改"}, headers=_auth(linyi))
    assert again.status_code == 409


def test_calendar_feeds_parse_and_expand_in_shanghai(client: FlaskClient, make_token) -> None:
    linyi, heze = make_token("linyi"), make_token("heze")
    meeting = _call(client, linyi)
    response = client.get("/api/v1/consultations/calendar.ics", headers=_auth(linyi))
    assert response.status_code == 200 and response.content_type.startswith("text/calendar")
    calendar = Calendar.from_ical(response.data)
    now = datetime.now(UTC)
    events = recurring_ical_events.of(calendar).between(now, now + timedelta(days=1))
    assert [str(e["UID"]) for e in events] == [f"meeting-{meeting['id']}@huaihai-hub"]
    chair = [a for a in events[0].get("ATTENDEE") if a.params.get("ROLE") == "CHAIR"]
    assert len(chair) == 1
    heze_feed = Calendar.from_ical(
        client.get("/api/v1/consultations/calendar/heze.ics", headers=_auth(heze)).data
    )
    assert len(heze_feed.walk("VEVENT")) == 1
    xuzhou_feed = client.get("/api/v1/consultations/calendar/lianyungang.ics", headers=_auth(heze))
    assert Calendar.from_ical(xuzhou_feed.data).walk("VEVENT") == []
    assert client.get("/api/v1/consultations/calendar/nowhere.ics", headers=_auth(heze)).status_code == 404


def test_assessment_csv_lists_every_city(client: FlaskClient, make_token) -> None:
    import csv
    import io

    linyi = make_token("linyi")
    _call(client, linyi)
    year = datetime.now(UTC).year
    response = client.get(f"/api/v1/consultations/assessment/{year}.csv", headers=_auth(linyi))
    assert response.status_code == 200 and response.content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 10 and {r["year"] for r in rows} == {str(year)}
    assert client.get("/api/v1/consultations/assessment/1800.csv", headers=_auth(linyi)).status_code == 404


def test_agenda_and_roll_call(client: FlaskClient, make_token) -> None:
    linyi, xuzhou = make_token("linyi"), make_token("xuzhou")
    meeting = _call(client, linyi)
    base = f"/api/v1/consultations/{meeting['id']}"
    assert client.post(f"{base}/agenda", json={"title": "物资调拨"}, headers=_auth(xuzhou)).status_code == 201
    assert (
        client.put(f"{base}/attendance", json={"present": ["xuzhou"]}, headers=_auth(xuzhou)).status_code
        == 403
    )
    roll = client.put(f"{base}/attendance", json={"present": ["linyi", "xuzhou"]}, headers=_auth(linyi))
    assert roll.get_json() == {"present": ["linyi", "xuzhou"]}
    assert client.put(f"{base}/attendance", json={"present": "x"}, headers=_auth(linyi)).status_code == 422
    quorum = client.get(base, headers=_auth(linyi)).get_json()["quorum"]
    assert (quorum["represented"], quorum["needed"]) == (2, 2)
