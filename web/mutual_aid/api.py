"""API for mutual aid under /api/v1/aid: the registry, requests, offers, each step, EDXL-RM 1.0."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts import edxl_rm as rm
from contracts.mutual_aid import Contact, RegistryEntry, RequestLine
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.errors import InvalidInput, NotFound
from hub.mutual_aid import export as aid_export
from hub.mutual_aid import services as aid
from hub.mutual_aid.models import AidCommitment, AidRequest, AidResource
from web.api import params
from web.auth import api_auth, current_actor
from web.kick import kick_flows, kick_mqtt

bp = Blueprint("mutual_aid_api", __name__, url_prefix="/api/v1/aid")

RM_TYPES = ("application/xml", "text/xml")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewRequest(_Body):
    """What a city asks for."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    lines: Annotated[tuple[RequestLine, ...], Field(min_length=1, max_length=50)]
    contact: Contact
    exercise: bool = False


class NewOffer(_Body):
    """An offer of a registry entry for a line; without a quantity, the entry's package as it stands."""

    resource_id: int
    quantity: Decimal | None = None


class StepBody(_Body):
    """What some steps need: the order number to authorise, the counts of a return."""

    order_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    returned: Decimal | None = None
    consumed: Decimal = Decimal(0)
    lost: Decimal = Decimal(0)


def entry_json(entry: AidResource) -> dict[str, object]:
    """Return a registry entry with its ledger, as the API shows it."""
    return {
        "id": entry.id,
        "external_id": entry.external_id,
        "owner_city": entry.owner_city.slug,
        "type_code": entry.type_code,
        "grade": entry.grade,
        "name": entry.name,
        "unit": entry.unit,
        "on_hand": str(entry.on_hand),
        "reserved": str(entry.reserved),
        "deployed": str(entry.deployed),
        "available": str(entry.available),
        "status": entry.status,
        "lat": entry.lat,
        "lon": entry.lon,
        "place": entry.place,
        "verified_at": entry.verified_at.isoformat(),
        "verified_by": entry.verified_by,
    }


def commitment_json(c: AidCommitment) -> dict[str, object]:
    """Return an offer or commitment, as the API shows it."""
    return {
        "id": c.id,
        "public_id": str(c.public_id),
        "line_id": c.line.line_id,
        "line": c.line_id,
        "resource_id": c.resource_id,
        "owner_city": c.owner_city.slug,
        "requesting_city": c.requesting_city.slug,
        "state": c.state,
        "quantity": str(c.quantity),
        "start": c.start_at.isoformat(),
        "end": c.end_at.isoformat(),
        "order_number": c.order_number,
        "estimated_cost": str(c.estimated_cost),
        "valid_until": c.valid_until.isoformat(),
        "exercise": c.exercise,
    }


def request_json(r: AidRequest) -> dict[str, object]:
    """Return a request with each line's progress, the asked cities and the commitments."""
    body = aid.request_to_contract(r).model_dump(mode="json")
    body["status"] = r.status
    body["progress"] = [
        {
            "line_id": p.line.line_id,
            "line": p.line.id,
            **{
                k: str(getattr(p, k))
                for k in ("requested", "offered", "committed", "en_route", "on_scene", "returned")
            },
        }
        for p in aid.progress(db.session, r)
    ]
    body["asked"] = [
        {"city": a.city.slug, "ring": a.ring, "deadline": a.deadline.isoformat(), "answer": a.answer}
        for a in aid.asks(db.session, r.id)
    ]
    body["commitments"] = [commitment_json(c) for c in aid.commitments_of(db.session, r.id)]
    return body


def _own_city() -> int:
    city_id = current_actor().city_id
    if city_id is None:
        raise InvalidInput("this call acts for a member city")
    return city_id


@bp.get("/registry")
@api_auth
def registry() -> ResponseReturnValue:
    """List the caller's city's registry."""
    return jsonify(items=[entry_json(e) for e in aid.registry_of(db.session, _own_city())])


@bp.put("/registry/<external_id>")
@api_auth
def put_entry(external_id: str) -> ResponseReturnValue:
    """Add or update an entry of the caller's city, keyed by the city's own id for it."""
    data = params.json_body(RegistryEntry)
    if data.id != external_id:
        raise InvalidInput("the body's id differs from the one in the path")
    entry = aid.register_entry(db.session, current_actor(), data)
    db.session.commit()
    return jsonify(entry_json(entry))


@bp.get("/requests")
@api_auth
def list_requests() -> ResponseReturnValue:
    """List the requests the caller's city made or was asked about."""
    return jsonify(items=[request_json(r) for r in aid.requests_for(db.session, _own_city())])


@bp.post("/requests")
@api_auth
def create_request() -> ResponseReturnValue:
    """Ask the other cities for help; the first ring is asked at once."""
    data = params.json_body(NewRequest)
    created = aid.create_request(
        db.session,
        current_actor(),
        title=data.title,
        lines=data.lines,
        contact=data.contact,
        exercise=data.exercise,
    )
    db.session.commit()
    kick_flows(current_app)
    return jsonify(request_json(created)), 201


@bp.get("/requests/<uuid:public_id>")
@api_auth
def get_request(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a request and where each of its lines stands."""
    return jsonify(request_json(aid.get_request_by_public_id(db.session, public_id)))


@bp.post("/requests/<uuid:public_id>/decline")
@api_auth
def decline_request(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer, for the caller's city, that it cannot help."""
    found = aid.get_request_by_public_id(db.session, public_id)
    aid.decline_ask(db.session, current_actor(), found.id)
    db.session.commit()
    return jsonify(request_json(found))


@bp.post("/lines/<int:line_id>/offers")
@api_auth
def offer(line_id: int) -> ResponseReturnValue:
    """Offer an entry of the caller's city for a line (its package when no quantity is given)."""
    data = params.json_body(NewOffer)
    actor = current_actor()
    if data.quantity is None:
        made = aid.offer_package(db.session, actor, line_id, data.resource_id)
    else:
        made = aid.make_offer(db.session, actor, line_id, data.resource_id, data.quantity)
    db.session.commit()
    return jsonify(commitment_json(made)), 201


def _body() -> StepBody:
    return params.json_body(StepBody) if request.content_length else StepBody()


@bp.post("/commitments/<int:commitment_id>/<action>")
@api_auth
def step(commitment_id: int, action: str) -> ResponseReturnValue:
    """Take a step on an offer or commitment: accept, authorise, dispatch, arrive, release, return, …"""
    body = _body()
    done = aid.take_step(
        db.session,
        current_actor(),
        commitment_id,
        action,
        order_number=body.order_number,
        counts=aid.ReturnCounts(returned=body.returned, consumed=body.consumed, lost=body.lost),
        root=settings_of(current_app).mqtt_root,
    )
    db.session.commit()
    if action == "dispatch":
        kick_mqtt(current_app)
    return jsonify(commitment_json(done))


@bp.get("/requests/<uuid:public_id>/edxl")
@api_auth
def export_edxl(public_id: uuid.UUID) -> ResponseReturnValue:
    """Export a request's exchange as EDXL-RM 1.0: the RequestResource, or `?step=n` of the chain."""
    found = aid.get_request_by_public_id(db.session, public_id)
    messages = aid_export.exchange(db.session, found)
    index = request.args.get("step", "0")
    if not index.isdigit() or int(index) >= len(messages):
        raise NotFound(f"the exchange has {len(messages)} messages")
    body = rm.build_rm(messages[int(index)])
    return Response(body, mimetype="application/xml", headers={"X-Message-Count": str(len(messages))})


@bp.post("/edxl")
@api_auth
def import_edxl() -> ResponseReturnValue:
    """Import a partner's RequestResource (a new request) or CommitResource (an authorisation)."""
    if request.mimetype not in RM_TYPES:
        raise InvalidInput("the body must be EDXL-RM XML (Content-Type: application/xml)")
    message = rm.parse_rm(request.get_data(cache=False), max_bytes=settings_of(current_app).max_body_bytes)
    result = aid_export.import_message(db.session, current_actor(), message)
    db.session.commit()
    if isinstance(result, AidRequest):
        kick_flows(current_app)
        return jsonify(request_json(result)), 201
    return jsonify(commitment_json(result))
