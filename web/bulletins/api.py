"""API for bulletins and warnings: receipts, CAP 1.2 in and out, the Atom feed."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from email.utils import format_datetime as http_date
from typing import Literal
from xml.etree.ElementTree import Element, SubElement, tostring

from flask import Blueprint, Response, current_app, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import Field

from contracts.bulletins import BulletinCreate, BulletinMessage, ReceiptCreate
from contracts.cap import build_cap, parse_cap
from contracts.common import NOT_XML_TEXT
from contracts.errors import ContractError, Problem
from hub.app import settings_of
from hub.bulletins import export as bulletin_export
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin, BulletinRecipient
from hub.extensions import db
from hub.kernel.types import utcnow
from web.api.models import ErrorBody, Out, StoredTime
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("bulletins_api", __name__, url_prefix="/api/v1")

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
DEFAULT_RECEIPT_WINDOW = timedelta(minutes=30)
TAGS = ("bulletins",)


class ReceiptOut(Out):
    """One addressed city's delivery and receipt (回执) of a bulletin."""

    city: str
    delivered_at: StoredTime | None = Field(description="When the city's platform accepted it (平台已接收)")
    receipt_at: StoredTime | None = Field(description="When a person of the city signed it (签收)")
    acknowledged_by: str | None = Field(description="The person who signed")
    signed_via: Literal["hub", "platform"] | None = Field(
        description="Where the person signed: on the hub, or on the city's own platform"
    )
    late: bool = Field(description="No person signed by the deadline")
    reminded: bool
    flagged: bool


class BulletinOut(BulletinMessage):
    """A bulletin or warning with its receipt matrix."""

    receipts: list[ReceiptOut]


class BulletinList(Out):
    """The bulletins the caller's city may see."""

    items: list[BulletinOut]


def _receipt(recipient: BulletinRecipient) -> ReceiptOut:
    return ReceiptOut(
        city=recipient.city.slug,
        delivered_at=recipient.delivered_at,
        receipt_at=recipient.receipt_at,
        acknowledged_by=recipient.acknowledged_by,
        signed_via=recipient.signed_via,
        late=bulletins.is_late(recipient, utcnow()),
        reminded=recipient.reminded_at is not None,
        flagged=recipient.flagged_at is not None,
    )


def _bulletin(bulletin: Bulletin) -> BulletinOut:
    message = bulletin_export.to_message(bulletin)
    return BulletinOut(**dict(message), receipts=[_receipt(r) for r in bulletin.recipients])


@bp.get("/bulletins")
@api_auth
@operation(tags=TAGS, HTTP_200=(BulletinList, "Newest first"))
def list_bulletins() -> ResponseReturnValue:
    """List the bulletins the caller's city may see: public ones and its own restricted ones."""
    items = bulletins.visible_list(db.session, current_actor().city_id)
    return BulletinList(items=[_bulletin(b) for b in items]).model_dump(mode="json")


@bp.post("/bulletins")
@api_auth
@operation(json=BulletinCreate, tags=TAGS, HTTP_201=(BulletinOut, "Issued; deliveries queued"))
def issue_bulletin(body: BulletinCreate) -> ResponseReturnValue:
    """Issue a bulletin or warning for the caller's city."""
    bulletin = bulletins.issue(
        db.session, current_actor(), body, mqtt_root=settings_of(current_app).mqtt_root
    )
    db.session.commit()
    kick_flows(current_app)
    return (
        _bulletin(bulletin).model_dump(mode="json"),
        201,
        {"Location": url_for("bulletins_api.get_bulletin", public_id=bulletin.public_id)},
    )


@bp.get("/bulletins/<uuid:public_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=BulletinOut)
def get_bulletin(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return one bulletin with its receipt matrix (404 for a restricted one not addressed to the caller)."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    return _bulletin(bulletin).model_dump(mode="json")


@bp.post("/bulletins/<uuid:public_id>/receipts")
@api_auth
@operation(
    json=ReceiptCreate,
    tags=TAGS,
    HTTP_201=(ReceiptOut, "Recorded"),
    HTTP_200=(ReceiptOut, "Already recorded"),
)
def post_receipt(public_id: uuid.UUID, body: ReceiptCreate) -> ResponseReturnValue:
    """Record the caller's city's receipt (回执); a second one changes nothing and answers 200."""
    recipient, created = bulletins.record_receipt(db.session, current_actor(), public_id, body)
    db.session.commit()
    return _receipt(recipient).model_dump(mode="json"), 201 if created else 200


@bp.post("/bulletins/<uuid:public_id>/cancel")
@api_auth
@operation(tags=TAGS, HTTP_200=(BulletinOut, "Cancelled (now or before)"))
def cancel_bulletin(public_id: uuid.UUID) -> ResponseReturnValue:
    """Cancel a bulletin of the caller's city; cancelling it again changes nothing."""
    bulletin, _ = bulletins.cancel(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    return _bulletin(bulletin).model_dump(mode="json")


@bp.get("/bulletins/<uuid:public_id>/cap")
@api_auth
@operation(tags=TAGS, HTTP_200=(None, "CAP 1.2 XML"), xml_answer=("200", "application/cap+xml"))
def bulletin_cap(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return a bulletin or warning as CAP 1.2 XML."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    return Response(build_cap(bulletin_export.to_cap(bulletin)), mimetype="application/cap+xml")


ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _xml_text(value: str) -> str:
    """Return `value` with any character XML 1.0 cannot carry replaced by U+FFFD.

    The contracts refuse such characters at every entry point; this keeps the feed well-formed
    even for text stored before they did."""
    return NOT_XML_TEXT.sub("\ufffd", value)


def _atom(parent: Element, name: str, text: str | None = None, **attributes: str) -> Element:
    element = SubElement(parent, name, {k: _xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


@bp.get("/cap/feed.atom")
@api_auth
@operation(tags=TAGS, HTTP_200=(None, "Atom feed"), xml_answer=("200", "application/atom+xml"))
def cap_feed() -> ResponseReturnValue:
    """Return the current live bulletins and warnings the caller may see, as a CAP Atom feed.

    Exercise traffic is never in it (MASAS keeps a separate exercise hub; here a drill's alerts
    are read one by one, status Exercise)."""
    items = bulletins.visible_list(db.session, current_actor().city_id, current_only=True, live_only=True)
    updated = max((b.issued_at for b in items), default=utcnow())
    # Atom is the default namespace of the document, so its elements are written unprefixed.
    feed = Element("feed", {"xmlns": ATOM, XML_LANG: "zh-CN"})
    _atom(feed, "id", url_for("bulletins_api.cap_feed", _external=True))
    _atom(feed, "title", "淮海应急协同枢纽 · 当前预警与通报")
    _atom(feed, "updated", updated.astimezone(UTC).isoformat())
    for bulletin in items:
        entry = _atom(feed, "entry")
        _atom(entry, "id", f"urn:uuid:{bulletin.public_id}")
        _atom(entry, "title", bulletin.title)
        _atom(entry, "updated", bulletin.issued_at.astimezone(UTC).isoformat())
        _atom(_atom(entry, "author"), "name", bulletin.issuing_city.name_zh)
        _atom(entry, "summary", bulletin.area)
        link = url_for("bulletins_api.bulletin_cap", public_id=bulletin.public_id, _external=True)
        _atom(entry, "link", rel="alternate", type="application/cap+xml", href=link)
    return Response(
        tostring(feed, encoding="utf-8", xml_declaration=True),
        mimetype="application/atom+xml",
        headers={"Last-Modified": http_date(updated.astimezone(UTC), usegmt=True)},
    )


@bp.post("/warnings/cap")
@api_auth
@operation(
    tags=TAGS,
    xml_body="application/cap+xml",
    HTTP_200=(BulletinOut, "An Update or Cancel applied to the warning it references"),
    HTTP_201=(BulletinOut, "Issued"),
    HTTP_409=(ErrorBody, "The same alert was issued before"),
)
def receive_cap() -> ResponseReturnValue:
    """Turn a CAP 1.2 alert from a partner system into a warning of the caller's city (201), or
    apply an Update or Cancel to the warnings its <references> name (200)."""
    if request.mimetype not in CAP_TYPES:
        raise ContractError(
            "the body must be CAP 1.2 XML (Content-Type: application/cap+xml)",
            [Problem("", f"unsupported content type {request.mimetype or 'none'!r}")],
        )
    alert = parse_cap(request.get_data(cache=False), max_bytes=settings_of(current_app).max_body_bytes)
    bulletin, created = bulletins.receive_cap(
        db.session,
        current_actor(),
        alert,
        receipt_deadline=utcnow() + DEFAULT_RECEIPT_WINDOW,
        mqtt_root=settings_of(current_app).mqtt_root,
    )
    db.session.commit()
    kick_flows(current_app)
    return _bulletin(bulletin).model_dump(mode="json"), 201 if created else 200
