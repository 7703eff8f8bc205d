"""Chinese throughout: refusals, validation messages and error pages in the reader's language,
and every page free of untranslated sentences in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from flask_babel import refresh
from pydantic import ValidationError

from contracts.bulletins import BulletinCreate
from contracts.incidents import IncidentCreate
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, InvalidInput, NotFound
from hub.kernel.models import City, Role
from web.errors import refusal_text, validation_text
from web.forms import LoginForm
from web.incidents.forms import IncidentForm


def _validation_errors(model: type, data: dict[str, object]) -> list:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()


INCIDENT = {
    "category": "natural_disaster",
    "level": "IV",
    "title": "沂河水位上涨",
    "occurred_at": datetime.now(UTC).isoformat(),
    "affected_cities": ["linyi"],
}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("zh_CN", "“纬度”须为数字。"), ("en", '"Latitude" must be a number.')],
)
def test_a_refused_number_is_named_by_its_label(app: Flask, locale: str, expected: str) -> None:
    errors = _validation_errors(IncidentCreate, {**INCIDENT, "latitude": "north"})
    with app.test_request_context("/incidents/new"):
        session["locale"] = locale
        assert [validation_text(e, IncidentForm(meta={"csrf": False})) for e in errors] == [expected]


def test_contract_rules_and_bounds_are_translated(app: Flask) -> None:
    no_colour = _validation_errors(
        BulletinCreate,
        {
            "kind": "warning",
            "category": "natural_disaster",
            "area": "沂河",
            "title": "暴雨",
            "text": "暴雨",
            "addressed_cities": ["xuzhou"],
            "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        },
    )
    too_far = _validation_errors(IncidentCreate, {**INCIDENT, "latitude": 91})
    missing = _validation_errors(IncidentCreate, {k: v for k, v in INCIDENT.items() if k != "title"})
    with app.test_request_context("/"):
        session["locale"] = "zh_CN"
        assert [validation_text(e) for e in no_colour] == ["预警须选择颜色（红、橙、黄或蓝）。"]
        assert [validation_text(e) for e in too_far] == ["“纬度”不能大于 90。"]
        assert [validation_text(e, labels={"title": "事件标题"}) for e in missing] == ["请填写“事件标题”。"]


def test_refusals_are_translated_by_reason_and_unknown_ones_keep_their_words(app: Flask) -> None:
    taken = Conflict("user name 'ly' is taken", reason="username_taken", details={"username": "ly"})
    with app.test_request_context("/"):
        session["locale"] = "zh_CN"
        assert refusal_text(taken) == "用户名“ly”已被占用。"
        assert refusal_text(InvalidInput("occurred_at is in the future", reason="occurred_in_future")) == (
            "发生时间不能晚于当前时间。"
        )
        assert refusal_text(NotFound("no incident 7")) == "要查看的内容不存在或已被删除。"
        assert refusal_text(Conflict("something new")) == "something new"
    with app.test_request_context("/"):
        session["locale"] = "en"
        refresh()
        assert refusal_text(taken) == 'The user name "ly" is taken.'


@pytest.mark.parametrize(
    ("locale", "expected"), [("zh_CN", "该字段是必填字段。"), ("en", "This field is required.")]
)
def test_wtforms_messages_follow_the_locale(app: Flask, locale: str, expected: str) -> None:
    with app.test_request_context("/login", method="POST", data={"username": "", "password": "x"}):
        session["locale"] = locale
        form = LoginForm(meta={"csrf": False})
        assert not form.validate()
        assert form.username.errors == [expected]


def _form(auth, path: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": auth.csrf(path), **fields}


def test_a_taken_user_name_is_said_in_chinese(client: FlaskClient, auth, make_user) -> None:
    make_user("admin", "xuzhou", Role.ADMIN)
    make_user("ly", "linyi")
    auth.login("admin")
    response = client.post(
        "/admin/users",
        data=_form(
            auth,
            "/admin/users",
            username="ly",
            display_name="",
            password="long-enough-password",
            city="linyi",
            role="coordinator",
        ),
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "用户名“ly”已被占用。" in page
    assert "is taken" not in page


def test_an_incident_in_the_future_is_refused_in_chinese(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/incidents/new",
        data=_form(
            auth,
            "/incidents/new",
            title="沂河洪水",
            category="natural_disaster",
            level="IV",
            occurred_at=tomorrow,
            affected_cities=["linyi"],
        ),
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "发生时间不能晚于当前时间。" in page
    assert "in the future" not in page


def _switch(client: FlaskClient, auth, locale: str) -> None:
    client.post(f"/locale/{locale}", data={"csrf_token": auth.csrf("/"), "next": "/"})


@pytest.mark.parametrize(
    ("locale", "title", "english"),
    [("zh_CN", "未找到", False), ("en", "Not found", True)],
)
def test_error_pages_are_translated(
    client: FlaskClient, auth, make_user, locale: str, title: str, english: bool
) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    _switch(client, auth, locale)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert title in missing.get_data(as_text=True)
    wrong_method = client.delete("/incidents/")
    assert wrong_method.status_code == 405
    text = _visible(wrong_method.get_data(as_text=True))
    assert ("The method is not allowed" in text) is False
    assert ("Method not allowed" in text) is english
    assert ("请求方式不允许" in text) is not english


# --- every page, in both languages -----------------------------------------------------------

# Words that stay as they are in a Chinese page: names, codes, formats and units.
ALLOWED_ENGLISH = {
    "English",
    "CAP",
    "MSEL",
    "ICS",
    "CSV",
    "JSON",
    "API",
    "MQTT",
    "UTC",
    "OpenStreetMap",
    "Leaflet",
    "Huaihai",
    "Hub",
}
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’]*(?:[ \t,;:/-]+[A-Za-z][A-Za-z'’]*){2,}")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
SKIPPED_ENDPOINTS = {"static", "dashboard.events", "mutual_aid.request_events"}  # files, push streams


class _Visible(HTMLParser):
    """Collect the text a reader sees, with the title, placeholders and button labels."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._hidden += 1
        values = dict(attrs)
        for name in ("placeholder", "title", "aria-label", "alt"):
            if values.get(name):
                self.parts.append(values[name] or "")
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def _visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "\n".join(parser.parts)


def _english_sentences(text: str, user_data: set[str]) -> list[str]:
    found = []
    for line in text.split("\n"):
        if any(data in line for data in user_data):
            continue
        for match in ENGLISH_RUN.finditer(line):
            words = re.findall(r"[A-Za-z][A-Za-z'’]*", match.group())
            if len([w for w in words if w not in ALLOWED_ENGLISH]) >= 3:
                found.append(match.group())
    return found


def _chinese_words(text: str, allowed: set[str]) -> list[str]:
    found = []
    for line in text.split("\n"):
        if any(data in line for data in allowed if not CJK.fullmatch(data)):
            continue
        rest = line
        for name in sorted(allowed, key=len, reverse=True):
            rest = rest.replace(name, " ")
        found.extend(CJK.findall(rest))
    return found


def _pages(app: Flask, objects: dict[str, object]) -> list[str]:
    paths = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.rule.startswith("/api/"):
                continue
            if rule.endpoint in SKIPPED_ENDPOINTS or rule.rule.endswith((".json", ".csv", ".ics")):
                continue
            if not set(rule.arguments) <= set(objects):
                continue
            paths.append(url_for(rule.endpoint, **{k: objects[k] for k in rule.arguments}))
    return sorted(set(paths))


def test_every_page_speaks_one_language(
    app: Flask, client: FlaskClient, auth, make_user, make_incident, city
) -> None:
    make_user("admin", "linyi", Role.ADMIN)
    user = make_user("ly", "linyi")
    incident = make_incident("linyi")
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
    user_data = {
        "沂河水位上涨",
        "沂河临沂段水位持续上涨。",
        "临沂市兰山区",
        "沂河流域",
        "沂河水情通报",
        "沂河临沂段水位上涨。",
        "admin",
        "ly",
    }
    cities = db.session.query(City).all()
    city_names = {c.name("zh_CN") for c in cities} | {c.name("zh_CN").removesuffix("市") for c in cities}
    objects: dict[str, object] = {"incident_id": incident.id, "public_id": bulletin.public_id}
    paths = _pages(app, objects)
    assert "/incidents/" in paths and f"/bulletins/{bulletin.public_id}" in paths

    problems: list[str] = []
    for login in ("admin", "ly"):
        auth.login(login)
        for locale in ("zh_CN", "en"):
            _switch(client, auth, locale)
            for path in paths:
                response = client.get(path)
                if response.status_code in (301, 302, 404) or response.mimetype != "text/html":
                    continue
                text = _visible(response.get_data(as_text=True))
                if locale == "zh_CN":
                    problems += [
                        f"{login} {locale} {path}: {s!r}" for s in _english_sentences(text, user_data)
                    ]
                else:
                    allowed = user_data | city_names | {"中文", "【演练】"}  # the marker injects carry
                    problems += [f"{login} {locale} {path}: {s!r}" for s in _chinese_words(text, allowed)]
        auth.logout()
    assert not problems, "untranslated text:\n" + "\n".join(sorted(set(problems)))
