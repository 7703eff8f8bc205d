"""API for mutual aid under /api/v1/aid: the registry, requests, offers, each step, EDXL-RM 1.0."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from typing import Annotated

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contracts import edxl_rm as rm
from contracts.common import CitySlug
from contracts.mutual_aid import AidState, Contact, EntryStatus, Money, RegistryEntry, RequestLine
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.errors import InvalidInput, NotFound
from hub.mutual_aid import costs as aid_costs
from hub.mutual_aid import export as aid_export
from hub.mutual_aid import services as aid
from hub.mutual_aid.models import AidCommitment, AidRequest, AidResource
from web.api.models import ErrorBody
from web.api.params import MAX_QUERY_INT, Query, QueryInt
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_flows, kick_mqtt
from web.mutual_aid.schemas import (
    AidAskOut,
    AidCommitmentOut,
    AidEntryList,
    AidEntryOut,
    AidLineProgress,
    AidRequestList,
    AidRequestOut,
)

bp = Blueprint("mutual_aid_api", __name__, url_prefix="/api/v1/aid")

RM_TYPES = ("application/xml", "text/xml")
TAGS = ("mutual-aid",)


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
    """What some steps need: the order number to authorise, the counts of a return, an extension's end.

    `new_end` is the end the requester asks for with `extend`; with `answer-extension` it grants
    the extension until then, and left out it refuses it.
    """

    order_number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    returned: Decimal | None = None
    consumed: Decimal = Decimal(0)
    lost: Decimal = Decimal(0)
    new_end: AwareDatetime | None = None


class CostBody(_Body):
    """The actual cost the owning city claims, in yuan, and what it covers."""

    amount: Money
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class SignBody(_Body):
    """The side the caller signs for; left out, the caller's own side."""

    side: aid_costs.Side | None = None


class CostsQuery(Query):
    """Which costs to export: an incident's, or a city's for a year."""

    incident: uuid.UUID | None = Field(None, description="the incident's id; or give city and year")
    city: CitySlug | None = Field(None, description="a city's slug, with year")
    year: QueryInt | None = Field(None, ge=2000, le=2100, description="the year the commitments started")

    @model_validator(mode="after")
    def _one_selection(self) -> CostsQuery:
        if (self.incident is None) == (self.city is None or self.year is None):
            raise ValueError("give either incident, or city and year")
        return self


class ExchangeQuery(Query):
    """Which message of a request's exchange to export."""

    step: QueryInt = Field(0, ge=0, le=MAX_QUERY_INT, description="0 is the RequestResource")


def _entry(entry: AidResource) -> AidEntryOut:
    return AidEntryOut(
        id=entry.id,
        external_id=entry.external_id,
        owner_city=entry.owner_city.slug,
        type_code=entry.type_code,
        grade=entry.grade,
        name=entry.name,
        unit=entry.unit,
        on_hand=entry.on_hand,
        reserved=entry.reserved,
        deployed=entry.deployed,
        available=entry.available,
        status=EntryStatus(entry.status),
        lat=entry.lat,
        lon=entry.lon,
        place=entry.place,
        verified_at=entry.verified_at,
        verified_by=entry.verified_by,
    )


def _commitment(c: AidCommitment) -> AidCommitmentOut:
    return AidCommitmentOut(
        id=c.id,
        public_id=c.public_id,
        line_id=c.line.line_id,
        line=c.line_id,
        resource_id=c.resource_id,
        owner_city=c.owner_city.slug,
        requesting_city=c.requesting_city.slug,
        state=AidState(c.state),
        quantity=c.quantity,
        start=c.start_at,
        end=c.end_at,
        extension_until=c.extension_until,
        order_number=c.order_number,
        estimated_cost=c.estimated_cost,
        actual_cost=c.actual_cost,
        actual_cost_note=c.actual_cost_note,
        owner_signed_by=c.owner_signed_by,
        owner_signed_at=c.owner_signed_at,
        requester_signed_by=c.requester_signed_by,
        requester_signed_at=c.requester_signed_at,
        cost_frozen=c.cost_frozen,
        valid_until=c.valid_until,
        exercise=c.exercise,
        dispatched=c.dispatched,
        returned=c.returned,
        consumed=c.consumed,
        lost=c.lost,
    )


def _request(r: AidRequest) -> AidRequestOut:
    """Return a request with each line's progress, the asked cities and the commitments."""
    return AidRequestOut(
        **dict(aid.request_to_contract(r)),
        status=r.status,
        progress=[
            AidLineProgress(
                line_id=p.line.line_id,
                line=p.line.id,
                requested=p.requested,
                offered=p.offered,
                committed=p.committed,
                en_route=p.en_route,
                on_scene=p.on_scene,
                released=p.released,
                returned=p.returned,
            )
            for p in aid.progress(db.session, r)
        ],
        asked=[
            AidAskOut(city=a.city.slug, ring=a.ring, deadline=a.deadline, answer=a.answer)
            for a in aid.asks(db.session, r.id)
        ],
        commitments=[_commitment(c) for c in aid.commitments_of(db.session, r.id)],
    )


def _own_city() -> int:
    city_id = current_actor().city_id
    if city_id is None:
        raise InvalidInput("this call acts for a member city")
    return city_id


@bp.get("/registry")
@api_auth
@operation(tags=TAGS, HTTP_200=AidEntryList)
def registry() -> ResponseReturnValue:
    """List the caller's city's registry."""
    entries = aid.registry_of(db.session, _own_city())
    return AidEntryList(items=[_entry(e) for e in entries]).model_dump(mode="json")


@bp.put("/registry/<external_id>")
@api_auth
@operation(
    json=RegistryEntry,
    tags=TAGS,
    HTTP_200=(AidEntryOut, "Added or updated"),
    HTTP_409=(ErrorBody, "Less on hand than is reserved and deployed"),
)
def put_entry(external_id: str, body: RegistryEntry) -> ResponseReturnValue:
    """Add or update an entry of the caller's city, keyed by the city's own id for it."""
    if body.id != external_id:
        raise InvalidInput("the body's id differs from the one in the path")
    entry = aid.register_entry(db.session, current_actor(), body)
    db.session.commit()
    return _entry(entry).model_dump(mode="json")


@bp.get("/requests")
@api_auth
@operation(tags=TAGS, HTTP_200=AidRequestList)
def list_requests() -> ResponseReturnValue:
    """List the requests the caller's city made or was asked about."""
    found = aid.requests_for(db.session, _own_city())
    return AidRequestList(items=[_request(r) for r in found]).model_dump(mode="json")


@bp.post("/requests")
@api_auth
@operation(json=NewRequest, tags=TAGS, HTTP_201=(AidRequestOut, "Made; the first ring is asked"))
def create_request(body: NewRequest) -> ResponseReturnValue:
    """Ask the other cities for help; the first ring is asked at once."""
    created = aid.create_request(
        db.session,
        current_actor(),
        title=body.title,
        lines=body.lines,
        contact=body.contact,
        exercise=body.exercise,
    )
    db.session.commit()
    kick_flows(current_app)
    return _request(created).model_dump(mode="json"), 201


@bp.get("/requests/<uuid:public_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=AidRequestOut)
def get_request(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a request and where each of its lines stands."""
    return _request(aid.get_request_by_public_id(db.session, public_id)).model_dump(mode="json")


@bp.post("/requests/<uuid:public_id>/decline")
@api_auth
@operation(
    tags=TAGS,
    HTTP_200=(AidRequestOut, "Declined for the caller's city"),
    HTTP_409=(ErrorBody, "The request is no longer open"),
)
def decline_request(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer, for the caller's city, that it cannot help."""
    found = aid.get_request_by_public_id(db.session, public_id)
    aid.decline_ask(db.session, current_actor(), found.id)
    db.session.commit()
    return _request(found).model_dump(mode="json")


@bp.post("/lines/<int:line_id>/offers")
@api_auth
@operation(
    json=NewOffer,
    tags=TAGS,
    HTTP_201=(AidCommitmentOut, "Offered"),
    HTTP_409=(ErrorBody, "More than is available, or the request or line is no longer open"),
)
def offer(line_id: int, body: NewOffer) -> ResponseReturnValue:
    """Offer an entry of the caller's city for a line (its package when no quantity is given)."""
    actor = current_actor()
    if body.quantity is None:
        made = aid.offer_package(db.session, actor, line_id, body.resource_id)
    else:
        made = aid.make_offer(db.session, actor, line_id, body.resource_id, body.quantity)
    db.session.commit()
    return _commitment(made).model_dump(mode="json"), 201


@bp.post("/commitments/<int:commitment_id>/<action>")
@api_auth
@operation(
    json=StepBody,
    optional_body=True,
    tags=TAGS,
    HTTP_200=(AidCommitmentOut, "The step taken"),
    HTTP_409=(ErrorBody, "Not a step the offer or commitment can take now"),
)
def step(commitment_id: int, action: str, body: StepBody) -> ResponseReturnValue:
    """Take a step: accept, authorise, dispatch, arrive, extend, answer-extension, release, return, …"""
    done = aid.take_step(
        db.session,
        current_actor(),
        commitment_id,
        action,
        order_number=body.order_number,
        counts=aid.ReturnCounts(returned=body.returned, consumed=body.consumed, lost=body.lost),
        new_end=body.new_end,
        root=settings_of(current_app).mqtt_root,
    )
    db.session.commit()
    if action == "dispatch":
        kick_mqtt(current_app)
    return _commitment(done).model_dump(mode="json")


@bp.put("/commitments/<int:commitment_id>/cost")
@api_auth
@operation(
    json=CostBody,
    tags=TAGS,
    HTTP_200=(AidCommitmentOut, "Entered; a changed amount takes back the signatures given"),
    HTTP_409=(ErrorBody, "Not returned yet, or both cities signed and the cost is frozen"),
)
def enter_cost(commitment_id: int, body: CostBody) -> ResponseReturnValue:
    """Enter the actual cost of a returned commitment, for the owning city."""
    done = aid_costs.enter_actual_cost(db.session, current_actor(), commitment_id, body.amount, body.note)
    db.session.commit()
    return _commitment(done).model_dump(mode="json")


@bp.post("/commitments/<int:commitment_id>/cost/sign")
@api_auth
@operation(
    json=SignBody,
    optional_body=True,
    tags=TAGS,
    HTTP_200=(AidCommitmentOut, "Signed for the caller's side"),
    HTTP_409=(ErrorBody, "No actual cost yet, already signed, or frozen"),
)
def sign_cost(commitment_id: int, body: SignBody) -> ResponseReturnValue:
    """Sign the actual cost for the caller's side (owner or requester); both signatures freeze it."""
    done = aid_costs.sign_cost(db.session, current_actor(), commitment_id, body.side)
    db.session.commit()
    return _commitment(done).model_dump(mode="json")


@bp.get("/costs.csv")
@api_auth
@operation(
    query=CostsQuery,
    tags=TAGS,
    HTTP_200=(None, "One row per commitment, amounts in CNY"),
    xml_answer=("200", "text/csv"),
)
def costs_csv(query: CostsQuery) -> ResponseReturnValue:
    """Export the costs of an incident's commitments, or of a city's for a year, as CSV."""
    if query.incident is not None:
        found = aid_costs.for_incident(db.session, query.incident)
        name = f"aid-costs-{query.incident}.csv"
    else:
        assert query.city is not None and query.year is not None  # checked by the model
        found = aid_costs.for_city_year(db.session, query.city, query.year)
        name = f"aid-costs-{query.city}-{query.year}.csv"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=aid_costs.CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(aid_costs.csv_rows(found))
    return Response(
        buffer.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )


@bp.get("/requests/<uuid:public_id>/edxl")
@api_auth
@operation(
    query=ExchangeQuery,
    tags=TAGS,
    HTTP_200=(None, "EDXL-RM 1.0 XML; X-Message-Count is the length of the exchange"),
    xml_answer=("200", "application/xml"),
)
def export_edxl(public_id: uuid.UUID, query: ExchangeQuery) -> ResponseReturnValue:
    """Export a request's exchange as EDXL-RM 1.0: the RequestResource, or `?step=n` of the chain."""
    found = aid.get_request_by_public_id(db.session, public_id)
    messages = aid_export.exchange(db.session, found)
    if query.step >= len(messages):
        raise NotFound(f"the exchange has {len(messages)} messages")
    body = rm.build_rm(messages[query.step])
    return Response(body, mimetype="application/xml", headers={"X-Message-Count": str(len(messages))})


@bp.post("/edxl")
@api_auth
@operation(
    tags=TAGS,
    xml_body="application/xml",
    HTTP_201=(AidRequestOut, "A RequestResource, made a request of the caller's city"),
    HTTP_200=(AidCommitmentOut, "A CommitResource, applied to the commitment it answers"),
    HTTP_409=(ErrorBody, "The commitment cannot be authorised now"),
)
def import_edxl() -> ResponseReturnValue:
    """Import a partner's RequestResource (a new request) or CommitResource (an authorisation)."""
    if request.mimetype not in RM_TYPES:
        raise InvalidInput("the body must be EDXL-RM XML (Content-Type: application/xml)")
    message = rm.parse_rm(request.get_data(cache=False), max_bytes=settings_of(current_app).max_body_bytes)
    result = aid_export.import_message(db.session, current_actor(), message)
    db.session.commit()
    if isinstance(result, AidRequest):
        kick_flows(current_app)
        return _request(result).model_dump(mode="json"), 201
    return _commitment(result).model_dump(mode="json")
