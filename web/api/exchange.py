"""API for information exchange: bulletins and receipts, CAP 1.2 in and out, verification
requests, daily reports and partner sync health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime as http_date
from xml.sax.saxutils import escape

from flask import Response, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from contracts.bulletin import (
    BulletinCreate,
    DailyReportCreate,
    ReceiptCreate,
    VerificationAnswerCreate,
    VerificationCreate,
)
from contracts.cap import build_cap, parse_cap, warning_fields_from_cap
from contracts.errors import ContractError, Problem, decode_data, decode_json
from contracts.partner import VerificationAnswer
from hub.app import settings_of
from hub.extensions import db
from hub.models import City, utcnow
from hub.services import bulletin_export, bulletins, daily_reports, partners, verifications
from hub.services.errors import Forbidden
from web.api import api
from web.auth import api_auth, current_actor
from web.kick import kick_flows

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
DEFAULT_RECEIPT_WINDOW = timedelta(minutes=30)


def _json_body(model: type) -> object:
    if request.mimetype != "application/json":
        raise ContractError(
            "the body must be JSON (Content-Type: application/json)",
            [Problem("", f"unsupported content type {request.mimetype or 'none'!r}")],
        )
    return decode_json(model, request.get_data(cache=False), settings_of(current_app).max_body_bytes)


def _receipt_json(recipient: object) -> dict[str, object]:
    return {
        "city": recipient.city.slug,  # type: ignore[attr-defined]
        "delivered_at": recipient.delivered_at.isoformat() if recipient.delivered_at else None,  # type: ignore[attr-defined]
        "receipt_at": recipient.receipt_at.isoformat() if recipient.receipt_at else None,  # type: ignore[attr-defined]
        "acknowledged_by": recipient.acknowledged_by,  # type: ignore[attr-defined]
        "reminded": recipient.reminded_at is not None,  # type: ignore[attr-defined]
        "flagged": recipient.flagged_at is not None,  # type: ignore[attr-defined]
    }


def _bulletin_json(bulletin: object) -> dict[str, object]:
    body = bulletin_export.to_message(bulletin).model_dump(mode="json")  # type: ignore[arg-type]
    body["receipts"] = [_receipt_json(r) for r in bulletin.recipients]  # type: ignore[attr-defined]
    return body


@api.get("/bulletins")
@api_auth
def list_bulletins() -> ResponseReturnValue:
    """List the bulletins the caller's city may see: public ones and its own restricted ones."""
    items = bulletins.visible_list(db.session, current_actor().city_id)
    return jsonify(items=[_bulletin_json(b) for b in items])


@api.post("/bulletins")
@api_auth
def issue_bulletin() -> ResponseReturnValue:
    """Issue a bulletin or warning for the caller's city."""
    data = _json_body(BulletinCreate)
    bulletin = bulletins.issue(
        db.session,
        current_actor(),
        data,
        mqtt_root=settings_of(current_app).mqtt_root,  # type: ignore[arg-type]
    )
    db.session.commit()
    kick_flows(current_app)
    return (
        jsonify(_bulletin_json(bulletin)),
        201,
        {"Location": url_for("api.get_bulletin", public_id=bulletin.public_id)},
    )


@api.get("/bulletins/<uuid:public_id>")
@api_auth
def get_bulletin(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return one bulletin with its receipt matrix (404 for a restricted one not addressed to the caller)."""
    return jsonify(_bulletin_json(bulletins.get_for(db.session, current_actor(), public_id)))


@api.post("/bulletins/<uuid:public_id>/receipts")
@api_auth
def post_receipt(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record the caller's city's receipt (回执); a second one changes nothing and answers 200."""
    data = _json_body(ReceiptCreate)
    recipient, created = bulletins.record_receipt(db.session, current_actor(), public_id, data)  # type: ignore[arg-type]
    db.session.commit()
    return jsonify(_receipt_json(recipient)), 201 if created else 200


@api.get("/bulletins/<uuid:public_id>/cap")
@api_auth
def bulletin_cap(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return a bulletin or warning as CAP 1.2 XML."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    return Response(build_cap(bulletin_export.to_cap(bulletin)), mimetype="application/cap+xml")


@api.get("/cap/feed.atom")
@api_auth
def cap_feed() -> ResponseReturnValue:
    """Return the current bulletins and warnings the caller may see, as a CAP Atom feed."""
    items = bulletins.visible_list(db.session, current_actor().city_id, current_only=True)
    updated = max((b.issued_at for b in items), default=utcnow())
    entries = []
    for bulletin in items:
        link = url_for("api.bulletin_cap", public_id=bulletin.public_id, _external=True)
        entries.append(
            "<entry>"
            f"<id>urn:uuid:{bulletin.public_id}</id>"
            f"<title>{escape(bulletin.title)}</title>"
            f"<updated>{bulletin.issued_at.astimezone(UTC).isoformat()}</updated>"
            f"<author><name>{escape(bulletin.issuing_city.name_zh)}</name></author>"
            f"<summary>{escape(bulletin.area)}</summary>"
            f'<link rel="alternate" type="application/cap+xml" href="{escape(link)}"/>'
            "</entry>"
        )
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">'
        f"<id>{escape(url_for('api.cap_feed', _external=True))}</id>"
        "<title>淮海应急协同枢纽 · 当前预警与通报</title>"
        f"<updated>{updated.astimezone(UTC).isoformat()}</updated>" + "".join(entries) + "</feed>"
    )
    return Response(
        feed.encode("utf-8"),
        mimetype="application/atom+xml",
        headers={"Last-Modified": http_date(updated.astimezone(UTC), usegmt=True)},
    )


@api.post("/warnings/cap")
@api_auth
def receive_cap() -> ResponseReturnValue:
    """Turn a CAP 1.2 alert from a partner system into a warning of the caller's city."""
    if request.mimetype not in CAP_TYPES:
        raise ContractError(
            "the body must be CAP 1.2 XML (Content-Type: application/cap+xml)",
            [Problem("", f"unsupported content type {request.mimetype or 'none'!r}")],
        )
    alert = parse_cap(request.get_data(cache=False), max_bytes=settings_of(current_app).max_body_bytes)
    fields = warning_fields_from_cap(alert)
    actor = current_actor()
    # The alert may name the receiving city among its areas; the warning goes to the others, or to
    # all the neighbours when it names no other member city.
    own = db.session.get(City, actor.city_id) if actor.city_id else None
    others = tuple(c for c in fields["addressed_cities"] if own is None or c != own.slug)
    fields["addressed_cities"], fields["all_neighbours"] = others, not others
    fields["receipt_deadline"] = utcnow() + DEFAULT_RECEIPT_WINDOW
    data = decode_data(BulletinCreate, fields)
    bulletin = bulletins.issue(
        db.session,
        actor,
        data,
        source="cap",
        mqtt_root=settings_of(current_app).mqtt_root,  # type: ignore[arg-type]
    )
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_bulletin_json(bulletin)), 201


def _verification_json(item: object) -> dict[str, object]:
    return {
        "id": str(item.public_id),  # type: ignore[attr-defined]
        "from_city": item.from_city.slug,  # type: ignore[attr-defined]
        "to_city": item.to_city.slug,  # type: ignore[attr-defined]
        "subject": item.subject,  # type: ignore[attr-defined]
        "question": item.question,  # type: ignore[attr-defined]
        "deadline": item.deadline.isoformat(),  # type: ignore[attr-defined]
        "answer": item.answer,  # type: ignore[attr-defined]
        "answered_at": item.answered_at.isoformat() if item.answered_at else None,  # type: ignore[attr-defined]
        "flagged": item.flagged_at is not None,  # type: ignore[attr-defined]
    }


@api.get("/verifications")
@api_auth
def list_verifications() -> ResponseReturnValue:
    """List verification requests the caller's city sent or received."""
    city_id = current_actor().city_id
    items = verifications.for_city(db.session, city_id) if city_id else []
    return jsonify(items=[_verification_json(v) for v in items])


@api.post("/verifications")
@api_auth
def create_verification() -> ResponseReturnValue:
    """Send a verification request (核报) to another city."""
    item = verifications.create(db.session, current_actor(), _json_body(VerificationCreate))  # type: ignore[arg-type]
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_verification_json(item)), 201


@api.post("/verifications/<uuid:public_id>/answer")
@api_auth
def answer_verification(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer a verification request addressed to the caller's city."""
    data = _json_body(VerificationAnswerCreate)
    item = verifications.answer(db.session, current_actor(), public_id, data)  # type: ignore[arg-type]
    db.session.commit()
    return jsonify(_verification_json(item))


@api.post("/verification-requests/<uuid:public_id>/answers")
@api_auth
def answer_from_platform(public_id: uuid.UUID) -> ResponseReturnValue:
    """Take a platform's answer in the partner contract's form (`VerificationAnswer`)."""
    answer = _json_body(VerificationAnswer)
    actor = current_actor()
    if answer.request_id != public_id:  # type: ignore[attr-defined]
        raise ContractError(
            "request_id in the body differs from the one in the path",
            [Problem("request_id", "does not match the path")],
        )
    item = verifications.answer(db.session, actor, public_id, VerificationAnswerCreate(answer=answer.answer))  # type: ignore[attr-defined]
    db.session.commit()
    return jsonify(_verification_json(item))


@api.post("/daily-reports")
@api_auth
def file_daily_report() -> ResponseReturnValue:
    """File today's daily or zero report for the caller's city."""
    data = _json_body(DailyReportCreate)
    due: time = settings_of(current_app).daily_report_due_time
    report = daily_reports.submit(db.session, current_actor(), daily_reports.today(), data, due=due)  # type: ignore[arg-type]
    db.session.commit()
    return jsonify(date=report.report_date.isoformat(), zero=report.zero, on_time=report.on_time), 201


@api.get("/partners/health")
@api_auth
def partner_health() -> ResponseReturnValue:
    """Return each city's sync health: last success, lag, last error, records in the last run."""
    now = datetime.now(UTC)
    return jsonify(
        items=[
            {
                "city": h.city.slug,
                "connected": h.platform is not None,
                "last_success": h.last_success.isoformat() if h.last_success else None,
                "lag_seconds": h.lag_seconds(now),
                "last_error": h.last_error,
                "records_last_run": h.records_last_run,
            }
            for h in partners.health(db.session)
        ]
    )


@api.post("/partners/<slug>/sync")
@api_auth
def partner_sync(slug: str) -> ResponseReturnValue:
    """Ask for an immediate sync of a city's platform (its own city, or any for an admin)."""
    actor = current_actor()
    platform = partners.platform_for(db.session, slug)
    if not actor.is_admin and not (actor.can_write_incidents and actor.city_id == platform.city_id):
        raise Forbidden("you may start a sync of your own city's platform only")
    partners.request_sync(db.session, slug, f"manual-{uuid.uuid4()}")
    db.session.commit()
    kick_flows(current_app)
    return jsonify(city=slug, requested=True), 202
