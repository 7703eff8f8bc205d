"""API for bulletins and warnings: receipts, CAP 1.2 in and out, the Atom feed."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from email.utils import format_datetime as http_date
from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from contracts.bulletins import BulletinCreate, ReceiptCreate
from contracts.cap import build_cap, parse_cap, warning_fields_from_cap
from contracts.errors import ContractError, Problem, decode_data
from hub.app import settings_of
from hub.bulletins import export as bulletin_export
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.kernel.models import City
from hub.kernel.types import utcnow
from web.api import params
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("bulletins_api", __name__, url_prefix="/api/v1")

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
DEFAULT_RECEIPT_WINDOW = timedelta(minutes=30)


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


@bp.get("/bulletins")
@api_auth
def list_bulletins() -> ResponseReturnValue:
    """List the bulletins the caller's city may see: public ones and its own restricted ones."""
    items = bulletins.visible_list(db.session, current_actor().city_id)
    return jsonify(items=[_bulletin_json(b) for b in items])


@bp.post("/bulletins")
@api_auth
def issue_bulletin() -> ResponseReturnValue:
    """Issue a bulletin or warning for the caller's city."""
    data = params.json_body(BulletinCreate)
    bulletin = bulletins.issue(
        db.session,
        current_actor(),
        data,
        mqtt_root=settings_of(current_app).mqtt_root,
    )
    db.session.commit()
    kick_flows(current_app)
    return (
        jsonify(_bulletin_json(bulletin)),
        201,
        {"Location": url_for("bulletins_api.get_bulletin", public_id=bulletin.public_id)},
    )


@bp.get("/bulletins/<uuid:public_id>")
@api_auth
def get_bulletin(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return one bulletin with its receipt matrix (404 for a restricted one not addressed to the caller)."""
    return jsonify(_bulletin_json(bulletins.get_for(db.session, current_actor(), public_id)))


@bp.post("/bulletins/<uuid:public_id>/receipts")
@api_auth
def post_receipt(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record the caller's city's receipt (回执); a second one changes nothing and answers 200."""
    data = params.json_body(ReceiptCreate)
    recipient, created = bulletins.record_receipt(db.session, current_actor(), public_id, data)
    db.session.commit()
    return jsonify(_receipt_json(recipient)), 201 if created else 200


@bp.post("/bulletins/<uuid:public_id>/cancel")
@api_auth
def cancel_bulletin(public_id: uuid.UUID) -> ResponseReturnValue:
    """Cancel a bulletin of the caller's city; cancelling it again changes nothing."""
    bulletin, _ = bulletins.cancel(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_bulletin_json(bulletin))


@bp.get("/bulletins/<uuid:public_id>/cap")
@api_auth
def bulletin_cap(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return a bulletin or warning as CAP 1.2 XML."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    return Response(build_cap(bulletin_export.to_cap(bulletin)), mimetype="application/cap+xml")


@bp.get("/cap/feed.atom")
@api_auth
def cap_feed() -> ResponseReturnValue:
    """Return the current bulletins and warnings the caller may see, as a CAP Atom feed."""
    items = bulletins.visible_list(db.session, current_actor().city_id, current_only=True)
    updated = max((b.issued_at for b in items), default=utcnow())
    entries = []
    for bulletin in items:
        link = url_for("bulletins_api.bulletin_cap", public_id=bulletin.public_id, _external=True)
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
        f"<id>{escape(url_for('bulletins_api.cap_feed', _external=True))}</id>"
        "<title>淮海应急协同枢纽 · 当前预警与通报</title>"
        f"<updated>{updated.astimezone(UTC).isoformat()}</updated>" + "".join(entries) + "</feed>"
    )
    return Response(
        feed.encode("utf-8"),
        mimetype="application/atom+xml",
        headers={"Last-Modified": http_date(updated.astimezone(UTC), usegmt=True)},
    )


@bp.post("/warnings/cap")
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
        mqtt_root=settings_of(current_app).mqtt_root,
        cap_identity=bulletins.CapIdentity(alert.sender, alert.identifier, alert.sent),
    )
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_bulletin_json(bulletin)), 201
