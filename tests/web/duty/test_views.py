"""Duty pages and API: today's names on the desk, CSV import with a clear refusal, export, JSON parity."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.duty import services as duty
from hub.duty.models import DutyShift
from hub.extensions import db
from hub.kernel.models import Role
from hub.kernel.types import utcnow


def _roster_for_now(officer: str) -> str:
    day, shift = duty.shift_at(utcnow())
    header = "date,shift,officer,officer_phone,leader,leader_phone"
    return f"{header}\n{day.isoformat()},{shift},{officer},0539-8311000,刘建国,\n"


def _upload(client: FlaskClient, auth, path: str, text: str | bytes, filename: str = "roster.csv"):
    raw = text if isinstance(text, bytes) else text.encode("utf-8-sig")
    return client.post(
        path,
        data={"csrf_token": auth.csrf(path), "file": (io.BytesIO(raw), filename)},
        content_type="multipart/form-data",
    )


def test_a_coordinator_imports_the_roster_and_every_desk_shows_who_is_on_duty(
    client: FlaskClient, auth, make_user
) -> None:
    make_user("ly", "linyi")
    make_user("xz", "xuzhou", Role.DUTY_OFFICER)
    auth.login("ly")
    taken = _upload(client, auth, "/duty", _roster_for_now("王磊"))
    assert taken.status_code == 302
    assert "已导入 1 行" in client.get("/duty").get_data(as_text=True)
    exported = client.get("/duty/roster.csv")
    assert exported.mimetype == "text/csv" and "王磊" in exported.get_data(as_text=True)
    auth.logout()
    auth.login("xz")
    desk = client.get("/").get_data(as_text=True)
    row = desk.split('id="on-duty"')[1].split('data-city="linyi"')[1].split("</tr>")[0]
    assert "王磊" in row and "刘建国" in row
    assert "未排班" in desk.split('data-city="xuzhou"')[1].split("</tr>")[0]
    assert 'id="handled-by"' not in desk  # Xuzhou has no one rostered: no name to route to
    auth.logout()
    auth.login("ly")
    urgent = client.get("/dashboard/live").get_data(as_text=True).split("</section>")[0]
    assert "本班值班员 王磊 · 带班领导 刘建国" in urgent
    auth.logout()
    auth.login("xz")
    # A duty officer sees the roster but may not import one.
    assert "roster-import" not in client.get("/duty").get_data(as_text=True)
    assert _upload(client, auth, "/duty", _roster_for_now("冒名")).status_code == 403


def test_a_bad_file_is_refused_in_chinese_and_nothing_is_saved(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    bad = _roster_for_now("王磊") + "2026-13-40,day,王磊,,刘建国,\n"
    page = _upload(client, auth, "/duty", bad)
    assert page.status_code == 422
    assert "第 3 行 date 列不是日期" in page.get_data(as_text=True)
    empty = client.post("/duty", data={"csrf_token": auth.csrf("/duty")}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "请选择要导入的 CSV 文件" in empty.get_data(as_text=True)
    not_utf8 = _upload(client, auth, "/duty", _roster_for_now("王磊").encode("gbk"))
    assert not_utf8.status_code == 422 and "文件须为 UTF-8 编码的 CSV" in not_utf8.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(DutyShift)) == 0


def test_the_directory_page_imports_filters_and_exports(client: FlaskClient, auth, make_user) -> None:
    make_user("xz", "xuzhou")
    auth.login("xz")
    text = "kind,name,title,phone,mobile\n值班室,徐州市应急管理局总值班室,,0516-83700000,\n"
    assert _upload(client, auth, "/directory", text, "directory.csv").status_code == 302
    page = client.get("/directory?city=xuzhou").get_data(as_text=True)
    assert "徐州市应急管理局总值班室" in page and "0516-83700000" in page
    assert "徐州市应急管理局总值班室" not in client.get("/directory?city=linyi").get_data(as_text=True)
    exported = client.get("/directory.csv").get_data(as_text=True)
    assert exported.lstrip("\ufeff").startswith("city,kind,name,title,phone,mobile")


def test_the_api_reads_and_puts_the_roster_and_the_directory(client: FlaskClient, make_token) -> None:
    headers = {"Authorization": f"Bearer {make_token('linyi')}"}
    day, shift = duty.shift_at(utcnow())
    body = {"items": [{"date": day.isoformat(), "shift": shift, "officer": "王磊", "leader": "刘建国"}]}
    assert client.put("/api/v1/duty/roster", json=body, headers=headers).json == {"count": 1}
    now = client.get("/api/v1/duty/now", headers=headers).json["items"]
    assert [(s["city"], s["officer"], s["leader"]) for s in now] == [("linyi", "王磊", "刘建国")]
    roster = client.get("/api/v1/duty/roster?days=1", headers=headers).json["items"]
    assert roster[0]["shift"] == shift
    # A control character (NUL, which PostgreSQL cannot even store) is refused, and nothing kept.
    nul = {"items": [{"date": day.isoformat(), "shift": shift, "officer": "王\u0000磊", "leader": "刘建国"}]}
    refused = client.put("/api/v1/duty/roster", json=nul, headers=headers)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "invalid_input"
    assert client.get("/api/v1/duty/roster?days=1", headers=headers).json["items"][0]["officer"] == "王磊"
    refused = client.put(
        "/api/v1/directory",
        json={"items": [{"kind": "leader", "name": "周强"}]},
        headers=headers,
    )
    assert refused.status_code == 422 and refused.json["error"]["code"] == "invalid_input"
    put = {"items": [{"kind": "desk", "name": "临沂市总值班室", "phone": "0539-8311000"}]}
    assert client.put("/api/v1/directory", json=put, headers=headers).json == {"count": 1}
    listed = client.get("/api/v1/directory?city=linyi", headers=headers).json["items"]
    assert [c["name"] for c in listed] == ["临沂市总值班室"]
