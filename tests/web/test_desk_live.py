"""The live desk: the change detector, pushed updates, acknowledgements and the exercise lane."""

from __future__ import annotations

import codecs
import contextlib
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from hub.app import settings_of
from hub.extensions import db
from hub.fleet.models import Vehicle
from hub.incidents import notifications
from hub.incidents.models import Incident
from hub.kernel import acknowledgements, desk
from hub.kernel.actors import Actor
from hub.kernel.models import City, DeskAcknowledgement, Role, User
from hub.kernel.types import utcnow
from tests.conftest import PASSWORD, AuthActions
from web.desk import live as desk_live


def _notify(incident: Incident, city: str = "xuzhou") -> None:
    notifications.deliver(db.session, incident.id, city, "neighbour", flow_run_id=None)
    db.session.commit()


def _offline_vehicle(city_id: int, code: str = "XZ-01") -> Vehicle:
    vehicle = Vehicle(
        city_id=city_id,
        code=code,
        name="徐州一号指挥车",
        mqtt_username=f"veh-{code}",
        mqtt_password_hash="x",
        online=False,
        session=1700000000000,
        online_changed_at=utcnow() - timedelta(minutes=1),
    )
    db.session.add(vehicle)
    db.session.commit()
    return vehicle


# The change detector -------------------------------------------------------------------------


def test_a_notice_changes_the_desk_version_of_the_notified_city_only(
    app: Flask,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
    city: Callable[[str], Any],
) -> None:
    reader = make_user("xz-reader", "xuzhou")
    incident = make_incident("linyi", "I")
    before = desk.versions(db.session)
    _notify(incident, "xuzhou")
    after = desk.versions(db.session)
    changed = {city_id for city_id in after if after[city_id] != before[city_id]}
    assert changed == {city("xuzhou").id}
    notifications.mark_read(
        db.session,
        Actor.for_user(reader),
        db.session.query(notifications.Notification).one().id,
    )
    db.session.commit()
    assert desk.versions(db.session)[city("xuzhou").id] != after[city("xuzhou").id]


def test_the_watcher_wakes_only_the_cities_that_changed(
    app: Flask, make_incident: Callable[..., Incident], city: Callable[[str], Any]
) -> None:
    watcher = desk_live.DeskWatcher(app)
    assert watcher.tick() == []  # the first look only takes the versions
    incident = make_incident("linyi", "II")
    assert set(watcher.tick()) == {c.id for c in db.session.query(City)}  # the region map changed
    seen = watcher.generation(city("xuzhou").id)
    _notify(incident, "xuzhou")
    assert watcher.tick() == [city("xuzhou").id]
    assert watcher.wait(city("xuzhou").id, seen, timeout=0.1) == seen + 1
    checks = watcher.full_checks
    assert watcher.tick() == []
    assert watcher.full_checks == checks  # nothing moved: only the probe was asked
    # A vehicle going off the air is not audited; the fleet's probe sees it.
    vehicle = _offline_vehicle(city("suqian").id, "SQ-01")
    assert watcher.tick() == [city("suqian").id]
    vehicle.online, vehicle.online_changed_at = True, utcnow()
    db.session.commit()
    assert watcher.tick() == [city("suqian").id]


# The exercise lane ---------------------------------------------------------------------------


def test_exercise_notices_stay_out_of_the_live_urgent_list_and_counters(
    client: FlaskClient,
    auth: AuthActions,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
    city: Callable[[str], Any],
) -> None:
    make_user("xz", "xuzhou")
    drill = make_incident(
        "linyi", "I", exercise=True, title="演练：骆马湖溃堤", affected_cities=["linyi", "xuzhou"]
    )
    _notify(drill, "xuzhou")
    found = desk.for_city(db.session, city("xuzhou").id, settings_of(client.application))
    assert [item for item in found.urgent if item.template.startswith("incidents/")] == []
    assert found.alerting == []
    assert [item.subject.incident.title for item in found.exercise] == ["演练：骆马湖溃堤"]
    auth.login("xz")
    page = client.get("/dashboard/live").get_data(as_text=True)
    urgent, _, rest = page.partition('aria-labelledby="exercise-title"')
    assert "演练：骆马湖溃堤" not in urgent.split('id="urgent-title"')[1]
    assert "演练：骆马湖溃堤" in rest.split("</section>")[0]
    assert "data-alert" not in page
    assert re.search(r'class="count zero"[^>]*>\s*<strong>0</strong><span>I 级', page)


# Acknowledgements ----------------------------------------------------------------------------


def test_an_alert_sounds_until_a_person_acknowledges_it_and_the_desk_says_who_and_when(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User], city: Callable[[str], Any]
) -> None:
    make_user("xz", "xuzhou")
    make_user("xz-observer", "xuzhou", Role.OBSERVER)
    vehicle = _offline_vehicle(city("xuzhou").id)
    key = f"fleet:offline:{vehicle.id}:{vehicle.session}"

    auth.login("xz-observer")
    page = client.get("/").get_data(as_text=True)
    assert "徐州一号指挥车 已离线" in page and f'data-item-key="{key}" data-alert="1"' in page
    assert 'name="key"' not in page  # an observer sees the alert but may not acknowledge it
    client.post("/dashboard/acknowledge", data={"csrf_token": auth.csrf("/"), "key": key})
    assert db.session.query(DeskAcknowledgement).count() == 0
    auth.logout()

    auth.login("xz")
    assert f'value="{key}"' in client.get("/").get_data(as_text=True)
    response = client.post("/dashboard/acknowledge", data={"csrf_token": auth.csrf("/"), "key": key})
    assert response.status_code == 302
    page = client.get("/dashboard/live").get_data(as_text=True)
    assert "data-alert" not in page
    assert re.search(r"xz 于 \S+ \S+ 确认|xz 于 \S+ 确认", page), page
    ack = db.session.query(DeskAcknowledgement).one()
    assert (ack.city_id, ack.item_key) == (city("xuzhou").id, key)


def test_reading_a_notice_is_its_acknowledgement(
    client: FlaskClient,
    auth: AuthActions,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
) -> None:
    make_user("xz", "xuzhou")
    _notify(make_incident("linyi", "I", title="沂河洪水"), "xuzhou")
    auth.login("xz")
    page = client.get("/").get_data(as_text=True)
    assert page.count('data-alert="1"') == 1
    notice = db.session.query(notifications.Notification).one()
    client.post(f"/notifications/{notice.id}/read", data={"csrf_token": auth.csrf("/")})
    page = client.get("/").get_data(as_text=True)
    assert "data-alert" not in page
    assert "xz 于" in page


def test_a_receipt_owed_alerts_when_it_arrives_and_again_when_it_falls_late(
    app: Flask, make_user: Callable[..., User], city: Callable[[str], Any]
) -> None:
    from contracts.bulletins import BulletinCreate
    from hub.bulletins import services as bulletins
    from hub.bulletins.models import Bulletin

    linyi = Actor.for_user(make_user("ly", "linyi"))
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    warning = BulletinCreate.model_validate(
        {
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": "沂河洪水橙色预警",
            "text": "预计未来12小时沂河临沂段将出现超警戒水位。",
            "addressed_cities": ["xuzhou"],
            "scope": "public",
            "receipt_deadline": (utcnow() + timedelta(minutes=30)).isoformat(),
        }
    )
    bulletin = bulletins.issue(db.session, linyi, warning)
    db.session.commit()
    settings = settings_of(app)
    xz = city("xuzhou").id

    def alerting() -> list[str]:
        return [item.key or "" for item in desk.for_city(db.session, xz, settings).alerting]

    (owed,) = alerting()
    assert owed.startswith("bulletins:receipt:") and owed.endswith(":owed")
    acknowledgements.acknowledge(db.session, xuzhou, owed)
    db.session.commit()
    assert alerting() == []
    before = desk.versions(db.session)[xz]
    db.session.get(Bulletin, bulletin.id).receipt_deadline = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    db.session.commit()
    assert desk.versions(db.session)[xz] != before  # falling late is a change of the desk
    assert alerting() == [owed.replace(":owed", ":late")]


# Panels kept by their token ------------------------------------------------------------------


def _without_tokens(page: str) -> str:
    """The page with its CSRF tokens blanked (a token is signed anew each second)."""
    page = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', page)
    return re.sub(r'name="csrf-token" content="[^"]+"', 'name="csrf-token" content=""', page)


def test_the_incidents_panel_is_rendered_once_per_change_of_what_it_shows(
    client: FlaskClient,
    auth: AuthActions,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
) -> None:
    from contracts.bulletins import BulletinCreate
    from hub.bulletins import services as bulletins

    linyi = Actor.for_user(make_user("ly", "linyi"))
    make_user("xz", "xuzhou")
    make_user("xz-observer", "xuzhou", Role.OBSERVER)
    _notify(make_incident("linyi", "I", title="沂河洪水"), "xuzhou")
    kept = desk_live.watcher(client.application).panels
    auth.login("xz")
    first = client.get("/").get_data(as_text=True)
    assert "沂河洪水" in first and "确认已阅" in first
    made = kept.made
    again = client.get("/").get_data(as_text=True)
    assert kept.made == made and _without_tokens(again) == _without_tokens(first)
    assert 'name="csrf_token" value=""' not in again  # this session's token is put back in its forms

    # A bulletin owed changes the urgent list, not the incidents panel: the panel is kept.
    owed = BulletinCreate.model_validate(
        {
            "category": "natural_disaster",
            "area": "沂河流域",
            "title": "沂河水情通报",
            "text": "沂河临沂段水位上涨。",
            "addressed_cities": ["xuzhou"],
            "receipt_deadline": (utcnow() + timedelta(minutes=30)).isoformat(),
        }
    )
    bulletins.issue(db.session, linyi, owed)
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "沂河水情通报" in page and kept.made == made

    # What the panel shows changes: a notice read, a new incident's level, a new notice.
    notice = db.session.query(notifications.Notification).one()
    client.post(f"/notifications/{notice.id}/read", data={"csrf_token": auth.csrf("/")})
    page = client.get("/").get_data(as_text=True)
    assert kept.made == made + 1 and "确认已阅" not in page and "xz 于" in page
    other = make_incident("linyi", "II", title="沭河险情", affected_cities=["linyi", "xuzhou"])
    page = client.get("/").get_data(as_text=True)
    assert kept.made == made + 2 and "沭河险情" in page  # among the city's open incidents
    _notify(other, "xuzhou")
    page = client.get("/").get_data(as_text=True)
    assert kept.made == made + 3 and "确认已阅" in page

    # Kept or fresh, the same desk.
    kept_page = client.get("/").get_data(as_text=True)
    desk_live.watcher(client.application).panels = desk_live.PanelRenders()
    assert _without_tokens(client.get("/").get_data(as_text=True)) == _without_tokens(kept_page)

    # Another role of the city has a render of its own: an observer may not mark a notice read.
    auth.logout()
    auth.login("xz-observer")
    page = client.get("/").get_data(as_text=True)
    assert "沭河险情" in page and "确认已阅" not in page


# The stream and the session ------------------------------------------------------------------


def test_the_stream_and_the_fallback_answer_401_once_the_session_has_ended(client: FlaskClient) -> None:
    for path in ("/dashboard/events", "/dashboard/live"):
        response = client.get(path)
        assert response.status_code == 401, path


@pytest.fixture
def served(request: pytest.FixtureRequest, app: Flask) -> Iterator[str]:
    """The app on waitress (the hub's server) on a free port; yield its base URL.

    Parametrize it indirectly with the number of threads (8 unless told); streams may take
    what `hub run` lets them take of those.
    """
    from waitress.server import create_server

    threads: int = getattr(request, "param", 8)
    desk_live.watcher(app).slots = desk_live.stream_slots_for(threads)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)

    def serve() -> None:
        with contextlib.suppress(OSError, ValueError):
            server.run()

    thread = threading.Thread(target=serve, name="test-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    finally:
        watcher = desk_live.watcher(app)
        watcher.stop(wait=5)  # the streams end, as `hub run` ends them before closing the server
        server.close()
        thread.join(timeout=5)


def _logged_in(base: str, username: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    answer = browser.post(
        f"{base}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        timeout=10,
    )
    assert answer.url == f"{base}/"
    return browser


class EventReader(threading.Thread):
    """Read a text/event-stream as a browser's EventSource would, noting when each event came.

    It reads until the server ends the stream (the fixture stops the watcher, which ends them).
    """

    def __init__(self, browser: requests.Session, url: str) -> None:
        super().__init__(daemon=True)
        self.response = browser.get(url, stream=True, timeout=30)
        self.events: list[tuple[float, str, str]] = []  # (arrived, event, data)
        self.changed = threading.Condition()

    def run(self) -> None:
        name, data, pending = "message", [], ""
        decoder = codecs.getincrementaldecoder("utf-8")()
        with contextlib.suppress(requests.RequestException, AttributeError, ValueError):
            # Each chunk as it comes (waitress sends one per event), as a browser reads it.
            for chunk in self.response.iter_content(chunk_size=None):
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    if line == "":
                        if data or name != "message":
                            with self.changed:
                                self.events.append((time.monotonic(), name, "\n".join(data)))
                                self.changed.notify_all()
                        name, data = "message", []
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))

    def wait_for(self, test: Callable[[str, str], bool], timeout: float = 10.0) -> float | None:
        """Return when the first event passing `test` arrived, or None after `timeout`."""
        ends = time.monotonic() + timeout
        with self.changed:
            while True:
                for arrived, name, data in self.events:
                    if test(name, data):
                        return arrived
                left = ends - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)


def test_a_new_urgent_notice_is_pushed_to_every_open_desk_of_the_city(
    served: str,
    app: Flask,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
) -> None:
    make_user("xz-1", "xuzhou")
    make_user("xz-2", "xuzhou")
    make_user("ly", "linyi")
    readers = [
        EventReader(_logged_in(served, name), f"{served}/dashboard/events") for name in ("xz-1", "xz-2", "ly")
    ]
    for reader in readers:
        assert reader.response.headers["Content-Type"].startswith("text/event-stream")
        reader.start()
        assert reader.wait_for(lambda name, data: name == "desk") is not None  # the desk as it is
    xuzhou, linyi = readers[:2], readers[2]

    delays: list[float] = []
    for n in range(12):
        title = f"沂河第{n}号洪峰"
        incident = make_incident("linyi", "I", title=title, affected_cities=["linyi"])
        time.sleep(0.3)  # let the region-map change go by, so the notice's own push is measured
        notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
        db.session.commit()
        committed = time.monotonic()
        for reader in xuzhou:
            arrived = reader.wait_for(
                lambda name, data, title=title: (
                    name == "desk"
                    and title in data.split('id="waiting-title"')[0]
                    and 'data-alert="1"' in data
                )
            )
            assert arrived is not None, f"{title} never reached a Xuzhou desk"
            delays.append(max(0.0, arrived - committed))
    # Linyi was not notified: its desk never lists the notices as urgent for it.
    assert not any('data-alert="1"' in data for _, name, data in linyi.events if name == "desk")
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    print(f"\npush delay over {len(delays)} deliveries: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


def test_the_desks_of_one_city_and_role_share_one_render_each_with_its_own_token(
    served: str,
    app: Flask,
    make_user: Callable[..., User],
    make_incident: Callable[..., Incident],
) -> None:
    make_user("xz-1", "xuzhou")
    make_user("xz-2", "xuzhou")
    make_user("xz-eye", "xuzhou", role=Role.OBSERVER)
    browsers = {name: _logged_in(served, name) for name in ("xz-1", "xz-2", "xz-eye")}
    readers = {name: EventReader(b, f"{served}/dashboard/events") for name, b in browsers.items()}
    for reader in readers.values():
        reader.start()
        assert reader.wait_for(lambda name, data: name == "desk") is not None
    incident = make_incident("linyi", "I", title="骆马湖水位超警", affected_cities=["linyi"])
    time.sleep(0.5)  # the region-map change goes by first
    renders = desk_live.watcher(app).renders.made
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()

    def pushed(data: str) -> bool:
        return "骆马湖水位超警" in data and 'data-alert="1"' in data

    desks = {}
    for name, reader in readers.items():
        assert reader.wait_for(lambda event, data: event == "desk" and pushed(data)) is not None
        desks[name] = next(d for _, e, d in reader.events if e == "desk" and pushed(d))
    # One render for the two coordinators, one for the observer (who has no 确认已阅 button).
    assert desk_live.watcher(app).renders.made - renders == 2
    assert "确认已阅" not in desks["xz-eye"].split('id="waiting-title"')[0]
    assert "\x00" not in "".join(desks.values())
    # Each coordinator's 确认已阅 form carries that person's own token: the other's is refused.
    form = r'action="(/[^"]+)" class="inline">\s*<input type="hidden" name="csrf_token" value="([^"]+)"'
    read = {name: re.search(form, desks[name]) for name in ("xz-1", "xz-2")}
    assert read["xz-1"] and read["xz-2"]
    action, token_1 = read["xz-1"].groups()
    assert token_1 != read["xz-2"].group(2)
    refused = browsers["xz-2"].post(f"{served}{action}", data={"csrf_token": token_1}, timeout=10)
    assert refused.status_code == 400
    accepted = browsers["xz-1"].post(f"{served}{action}", data={"csrf_token": token_1}, timeout=10)
    assert accepted.ok
    assert db.session.get(notifications.Notification, int(re.findall(r"\d+", action)[0])).read_at is not None


def test_a_stream_ends_with_session_ended_when_the_person_logs_out_elsewhere(
    served: str, app: Flask, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_live, "HEARTBEAT_SECONDS", 0.3)
    make_user("xz", "xuzhou")
    browser = _logged_in(served, "xz")
    reader = EventReader(browser, f"{served}/dashboard/events")
    reader.start()
    assert reader.wait_for(lambda name, data: name == "desk") is not None
    page = browser.get(f"{served}/", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    browser.post(f"{served}/logout", data={"csrf_token": token.group(1)}, timeout=10)
    assert reader.wait_for(lambda name, data: name == "session-ended", timeout=10) is not None
    assert browser.get(f"{served}/dashboard/events", timeout=10).status_code == 401


def test_stream_slots_leave_threads_to_pages() -> None:
    assert desk_live.stream_slots_for(48) == 36
    assert desk_live.stream_slots_for(8) == 4
    assert desk_live.stream_slots_for(4) == 1


@pytest.mark.parametrize("served", [48], indirect=True)
def test_twenty_open_desks_leave_the_default_server_serving_pages(
    served: str, app: Flask, make_user: Callable[..., User]
) -> None:
    make_user("xz", "xuzhou")
    browser = _logged_in(served, "xz")
    readers = [EventReader(_logged_in(served, "xz"), f"{served}/dashboard/events") for _ in range(20)]
    for reader in readers:
        reader.start()
    for reader in readers:
        assert reader.wait_for(lambda name, data: name == "desk") is not None
    assert desk_live.watcher(app).streams == 20
    started = time.monotonic()
    for path in ("/", "/incidents/", "/dashboard/live"):
        assert browser.get(f"{served}{path}", timeout=10).status_code == 200, path
    print(f"\nthree pages beside 20 open streams: {(time.monotonic() - started) * 1000:.0f} ms")


@pytest.mark.parametrize("served", [8], indirect=True)
def test_a_stream_beyond_the_slots_is_refused_so_the_page_polls(
    served: str, app: Flask, make_user: Callable[..., User]
) -> None:
    make_user("xz", "xuzhou")
    browser = _logged_in(served, "xz")
    readers = [EventReader(browser, f"{served}/dashboard/events") for _ in range(4)]
    for reader in readers:
        reader.start()
        assert reader.wait_for(lambda name, data: name == "desk") is not None
    refused = browser.get(f"{served}/dashboard/events", timeout=10)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert browser.get(f"{served}/dashboard/live", timeout=10).status_code == 200
