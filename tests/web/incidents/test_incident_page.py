"""The incident pages: the standard report's fields, the story, follow-ups with a place, attachments."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.extensions import db
from hub.incidents.models import Incident, IncidentAttachment, IncidentReport
from hub.kernel.models import Role


def png(width: int = 2, height: int = 2) -> bytes:
    """Return a real PNG image (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def docx() -> bytes:
    """Return the skeleton of a Word document (what the type check looks at)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def _csrf(client, path: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match
    return match.group(1)


def _stored(settings) -> list[Path]:
    folder = Path(settings.instance_path) / "attachments"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_the_new_incident_form_takes_the_standard_report_and_names_the_place_once(
    client, auth, make_user
) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/incidents/new").get_data(as_text=True)
    # The fieldset is 发生地点; the field inside it is the address line.
    assert page.count("发生地点") == 1
    for label in ("信息来源", "事件性质", "影响范围", "发展趋势", "已采取措施", "死亡", "受伤", "失踪"):
        assert label in page, label
    form = {
        "csrf_token": _csrf(client, "/incidents/new"),
        "title": "沂河漫堤",
        "category": "natural_disaster",
        "level": "IV",
        "occurred_at": "2026-11-30T08:00",
        "location": "兰山区沂河路",
        "latitude": "35.10000",
        "longitude": "118.35000",
        "affected_cities": ["linyi"],
        "source": "群众报告",
        "nature": "河道漫堤",
        "extent": "两个村庄",
        "trend": "水位仍在上涨",
        "measures": "转移群众 300 人",
        "deaths": "0",
        "injured": "2",
        "missing": "",
    }
    response = client.post("/incidents/new", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    incident = db.session.scalars(sa.select(Incident)).one()
    assert (incident.source, incident.nature, incident.extent, incident.trend, incident.measures) == (
        "群众报告",
        "河道漫堤",
        "两个村庄",
        "水位仍在上涨",
        "转移群众 300 人",
    )
    assert (incident.deaths, incident.injured, incident.missing) == (0, 2, None)
    detail = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "死亡 0 · 受伤 2 · 失踪 —" in detail
    # Times in Asia/Shanghai: 08:00 local is 00:00 UTC.
    assert "2026-11-30 08:00" in detail


def test_a_negative_count_is_refused(client, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": _csrf(client, "/incidents/new"),
            "title": "t",
            "category": "natural_disaster",
            "level": "IV",
            "occurred_at": "2026-11-30T08:00",
            "affected_cities": ["linyi"],
            "deaths": "-1",
        },
    )
    assert response.status_code == 422
    assert db.session.scalars(sa.select(Incident)).all() == []


def test_a_follow_up_carries_its_place_and_figures_into_the_story(
    client, auth, make_user, make_incident
) -> None:
    incident = make_incident("linyi")
    make_user("ly", "linyi")
    auth.login("ly")
    path = f"/incidents/{incident.id}"
    page = client.get(path).get_data(as_text=True)
    assert 'data-map="report-picker"' in page
    response = client.post(
        f"{path}/reports",
        data={
            "csrf_token": _csrf(client, path),
            "kind": "follow_up",
            "body": "水位回落。",
            "location": "沂河大桥",
            "latitude": "35.05",
            "longitude": "118.34",
            "injured": "4",
            "measures": "增派抽水泵 6 台",
        },
    )
    assert response.status_code == 302
    report = db.session.scalars(sa.select(IncidentReport)).one()
    assert (report.location, report.latitude, report.longitude, report.injured) == (
        "沂河大桥",
        35.05,
        118.34,
        4,
    )
    page = client.get(path).get_data(as_text=True)
    story = page[page.index('id="story"') :]
    assert story.index('data-kind="recorded"') < story.index('data-kind="report"')
    # No city had been told of this level IV incident: the status change is in the story all the same.
    assert story.index('data-kind="report"') < story.index('data-kind="change"')
    assert "状态 已接报 → 处置中" in story
    assert "增派抽水泵 6 台" in story and "沂河大桥" in story


@pytest.mark.parametrize("settings", [{"attachment_max_bytes": 5_000}], indirect=True)
def test_attachments_are_checked_stored_and_served_to_members_only(
    client, auth, make_user, make_incident, settings
) -> None:
    incident = make_incident("linyi")
    make_user("ly", "linyi")
    auth.login("ly")
    path = f"/incidents/{incident.id}"
    image = png()

    def upload(name: str, data: bytes):
        return client.post(
            f"{path}/attachments",
            data={"csrf_token": _csrf(client, path), "file": (io.BytesIO(data), name)},
            content_type="multipart/form-data",
            follow_redirects=True,
        )

    # A page renamed as a photo, a photo named as a document, an oversized file, one far over.
    refused = [
        upload("scene.png", b"<html><script>alert(1)</script></html>"),
        upload("scene.pdf", image),
        upload("big.png", image + b"\x00" * 6_000),
        upload("huge.png", image + b"\x00" * 200_000),
    ]
    texts = [r.get_data(as_text=True) for r in refused]
    assert "不支持的文件类型" in texts[0] and "不支持的文件类型" in texts[1]
    # Just over the limit is refused by the check, far over it before the body is even read.
    assert "文件过大：最大 5 KB。" in texts[2]
    assert "文件过大：最大 5 KB。" in texts[3]
    assert db.session.scalars(sa.select(IncidentAttachment)).all() == []
    assert _stored(settings) == []

    assert "附件已上传" in upload("现场 照片.png", image).get_data(as_text=True)
    assert "附件已上传" in upload("方案.docx", docx()).get_data(as_text=True)
    photo, document = db.session.scalars(sa.select(IncidentAttachment).order_by(IncidentAttachment.id)).all()
    assert (photo.filename, photo.content_type, photo.size) == ("现场 照片.png", "image/png", len(image))
    files = _stored(settings)
    assert [f.name for f in files] == sorted([photo.storage_name, document.storage_name])
    assert (Path(settings.instance_path) / "attachments" / photo.storage_name).read_bytes() == image

    page = client.get(path).get_data(as_text=True)
    assert 'data-kind="attachment"' in page and "现场 照片.png" in page
    served = client.get(f"{path}/attachments/{photo.id}")
    assert served.status_code == 200 and served.data == image
    assert served.mimetype == "image/png" and served.headers["Cache-Control"] == "private, no-store"
    download = client.get(f"{path}/attachments/{document.id}")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/incidents/{incident.id + 1}/attachments/{photo.id}").status_code == 404

    # An observer of another city reads the incident but may not add to it.
    auth.logout()
    make_user("sq-obs", "suqian", Role.OBSERVER)
    auth.login("sq-obs")
    assert client.get(f"{path}/attachments/{photo.id}").status_code == 200
    response = client.post(
        f"{path}/attachments",
        data={"csrf_token": _csrf(client, path), "file": (io.BytesIO(image), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 403
    auth.logout()
    # Logged out: nothing is served.
    assert client.get(f"{path}/attachments/{photo.id}").status_code in (302, 401)


def test_a_vehicle_sent_and_a_bulletin_issued_from_the_incident_join_its_story(
    client, auth, make_user, make_incident, city
) -> None:
    from contracts.mqtt import decode_command
    from hub.bulletins.models import Bulletin
    from hub.fleet import services as fleet
    from hub.fleet.models import VehicleCommand
    from hub.kernel.actors import Actor
    from hub.kernel.models import MqttOutbox

    incident = make_incident("linyi", latitude=35.06, longitude=118.35)
    vehicle, _ = fleet.register_vehicle(
        db.session, Actor("system", "tests", None, Role.ADMIN), city("linyi"), "v01", "临沂1号指挥车"
    )
    db.session.commit()
    make_user("ly", "linyi")
    auth.login("ly")
    path = f"/incidents/{incident.id}"
    page = client.get(path).get_data(as_text=True)
    assert "临沂1号指挥车 · v01" in page
    response = client.post(
        f"{path}/dispatch",
        data={"csrf_token": _csrf(client, path), "vehicle": str(vehicle.id), "note": "走沂河路"},
    )
    assert response.status_code == 302
    command = db.session.scalars(sa.select(VehicleCommand)).one()
    assert (command.incident_id, command.kind, command.state) == (incident.id, "goto", "pending")
    assert (command.arguments["lat"], command.arguments["lon"], command.arguments["note"]) == (
        35.06,
        118.35,
        "走沂河路",
    )
    sent = decode_command(db.session.scalars(sa.select(MqttOutbox)).one().payload)
    assert sent.id == command.command_id and sent.action.kind == "goto"

    form = client.get(f"/bulletins/new?incident={incident.id}").get_data(as_text=True)
    assert 'id="about-incident"' in form and f'name="incident" type="hidden" value="{incident.id}"' in form
    response = client.post(
        "/bulletins/new",
        data={
            "csrf_token": _csrf(client, "/bulletins/new"),
            "incident": str(incident.id),
            "kind": "bulletin",
            "category": "natural_disaster",
            "title": "沂河水位通报",
            "area": "临沂市兰山区",
            "text": "沂河临沂段超警戒水位。",
            "addressed_cities": ["xuzhou"],
            "scope": "public",
            "receipt_minutes": "30",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.session.scalars(sa.select(Bulletin)).one().incident_id == incident.id

    page = client.get(path).get_data(as_text=True)
    story = page[page.index('id="story"') :]
    assert 'data-kind="command"' in story and "临沂1号指挥车" in story and "待接收" in story
    assert 'data-kind="bulletin"' in story and "沂河水位通报" in story

    # Another city's person may send their own vehicles only; one without vehicles sees no form.
    auth.logout()
    make_user("xz", "xuzhou")
    auth.login("xz")
    assert 'id="dispatch"' not in client.get(path).get_data(as_text=True)
    response = client.post(
        f"{path}/dispatch", data={"csrf_token": _csrf(client, path), "vehicle": str(vehicle.id)}
    )
    assert response.status_code == 302
    assert len(db.session.scalars(sa.select(VehicleCommand)).all()) == 1


def test_the_owner_watches_a_circle_around_the_place_and_the_map_draws_it(
    client, auth, make_user, make_incident
) -> None:
    from hub.fleet import areas

    incident = make_incident("linyi", latitude=35.06, longitude=118.35)
    make_user("ly", "linyi")
    auth.login("ly")
    path = f"/incidents/{incident.id}"
    assert 'id="area-form"' in client.get(path).get_data(as_text=True)
    refused = client.post(f"{path}/area", data={"csrf_token": _csrf(client, path), "radius_m": "20"})
    assert refused.status_code == 302 and areas.active_for_incident(db.session, incident.id) == []
    client.post(f"{path}/area", data={"csrf_token": _csrf(client, path), "radius_m": "2500"})
    (area,) = areas.active_for_incident(db.session, incident.id)
    assert (area.latitude, area.longitude, area.radius_m) == (35.06, 118.35, 2500)
    page = client.get(path).get_data(as_text=True)
    assert 'data-circle="2500.0"' in page and "半径 2500 米" in page

    auth.logout()
    make_user("xz", "xuzhou")
    auth.login("xz")
    assert 'id="area-form"' not in client.get(path).get_data(as_text=True)
    assert (
        client.post(f"{path}/area", data={"csrf_token": _csrf(client, path), "radius_m": "500"}).status_code
        == 403
    )


def test_the_desk_and_the_story_name_the_officer_a_notice_was_routed_to(
    client, auth, make_user, make_incident
) -> None:
    from hub.duty import services as duty
    from hub.incidents import notifications
    from hub.kernel.actors import Actor
    from hub.kernel.types import utcnow

    day, shift = duty.shift_at(utcnow())
    duty.import_roster(
        db.session,
        Actor.for_user(make_user("xz", "xuzhou")),
        f"date,shift,officer,officer_phone,leader,leader_phone\n{day},{shift},王磊,,刘建国,\n",
    )
    incident = make_incident("linyi", "II")
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    auth.login("xz")
    assert "送值班员 王磊 · 带班领导 刘建国" in client.get("/").get_data(as_text=True)
    assert "送值班员 王磊" in client.get(f"/incidents/{incident.id}").get_data(as_text=True)
