"""Mutual aid out and in as EDXL-RM 1.0: a request's exchange as a chain of messages, a partner's in.

Message ids are derived from the hub's own ids, so exporting twice gives the same chain and a
partner's answer names, in its PrecedingMessageID, the commitment it answers:

    RequestResource          urn:x-huaihai-hub:aid:{request}
    ResponseToRequestResource urn:x-huaihai-hub:aid:{request}:offer:{commitment}
    RequisitionResource      …:offer:{commitment}:accepted      (accepted and later)
    CommitResource           …:offer:{commitment}:authorised    (authorised and later)
    ReportResourceDeploymentStatus …:offer:{commitment}:deployed (dispatched until released)
    ReleaseResource          …:offer:{commitment}:released      (released and returned)
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contracts import edxl_rm as rm
from contracts.mutual_aid import AidOffer, AidState, Contact
from contracts.resource_types import Grade
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.types import DbSession
from hub.mutual_aid import rules, services
from hub.mutual_aid.models import AidCommitment, AidRequest, AidRmMessage

PREFIX = "urn:x-huaihai-hub:aid:"
_OFFER_ID = re.compile(
    r"^urn:x-huaihai-hub:aid:[0-9a-f-]{36}:offer:(?P<commitment>[0-9a-f-]{36})(?::[a-z]+)?$"
)
_REQUISITIONED = rules.RESERVING_STATES | rules.DEPLOYED_STATES | {AidState.RETURNED}
_COMMITTED = _REQUISITIONED - {AidState.ACCEPTED}
_DEPLOYED = rules.DEPLOYED_STATES | {AidState.RETURNED}
_RELEASED = frozenset({AidState.RELEASED, AidState.RETURNED})


def request_message_id(request: AidRequest) -> str:
    """Return the MessageID of a request's RequestResource."""
    return f"{PREFIX}{request.public_id}"


def _contact(description: str, role: rm.ContactRole) -> rm.Contact:
    return rm.Contact(description=description, role=role)


def _offer(commitment: AidCommitment) -> AidOffer:
    entry = commitment.resource
    return AidOffer(
        id=commitment.public_id,
        request_id=commitment.request.public_id,
        line_id=commitment.line.line_id,
        offering_city=commitment.owner_city.slug,
        resource_id=entry.external_id,
        type_code=entry.type_code,
        grade=Grade(entry.grade) if entry.grade is not None else None,
        quantity=commitment.quantity,
        unit=entry.unit,
        estimated_arrival=commitment.start_at,
        estimated_cost=commitment.estimated_cost,
        offered_at=commitment.offered_at,
        valid_until=max(commitment.valid_until, commitment.offered_at + timedelta(seconds=1)),
    )


def exchange(session: DbSession, request: AidRequest) -> list[rm.RmMessage]:
    """Return a request's exchange as EDXL-RM messages: the request, then each commitment's chain."""
    first = rm.request_to_rm(
        services.request_to_contract(request),
        message_id=request_message_id(request),
        sent_at=request.created_at,
    )
    messages = [first]
    for commitment in services.commitments_of(session, request.id):
        owner = _contact(f"{commitment.owner_city.slug}", rm.ContactRole.SENDER)
        offer_id = f"{request_message_id(request)}:offer:{commitment.public_id}"
        previous = rm.offer_to_rm(
            _offer(commitment), first, message_id=offer_id, sent_at=commitment.offered_at, contact=owner
        )
        messages.append(previous)
        state = AidState(commitment.state)
        if state not in _REQUISITIONED:
            continue
        record = services.commitment_to_contract(commitment)
        requester = _contact(commitment.requesting_city.slug, rm.ContactRole.REQUESTER)
        # The requesting city pays the owner's costs back (EMAC's reimbursement).
        funding = (rm.Funding(info=f"{commitment.requesting_city.slug} reimburses the estimated cost"),)
        steps = [
            (rm.MessageType.REQUISITION_RESOURCE, "accepted", requester, _REQUISITIONED),
            (rm.MessageType.COMMIT_RESOURCE, "authorised", owner, _COMMITTED),
            (rm.MessageType.REPORT_RESOURCE_DEPLOYMENT_STATUS, "deployed", owner, _DEPLOYED),
            (rm.MessageType.RELEASE_RESOURCE, "released", requester, _RELEASED),
        ]
        for kind, suffix, contact, states in steps:
            if state not in states:
                break
            previous = rm.commitment_to_rm(
                record,
                previous,
                kind,
                message_id=f"{offer_id}:{suffix}",
                sent_at=commitment.updated_at,
                contact=contact,
                funding=funding if kind is rm.MessageType.REQUISITION_RESOURCE else (),
            )
            messages.append(previous)
    return messages


def import_message(session: DbSession, actor: Actor, message: rm.RmMessage) -> AidRequest | AidCommitment:
    """Apply a partner's RequestResource (a new request) or CommitResource (an authorisation), once.

    Each message is kept by its sender's city and MessageID: the same message sent again gets
    the request or commitment it made the first time and changes nothing; the same MessageID
    with other content is refused (409), since the sender must not reuse an id.
    """
    if actor.city_id is None:
        raise Forbidden("only a member city's platform or person sends EDXL-RM messages")
    digest = hashlib.sha256(message.model_dump_json().encode("utf-8")).hexdigest()
    seen = session.scalar(
        select(AidRmMessage).where(
            AidRmMessage.city_id == actor.city_id, AidRmMessage.message_id == message.message_id
        )
    )
    if seen is not None:
        if seen.digest != digest:
            raise Conflict(
                f"message {message.message_id} was received before with other content",
                reason="message_id_reused",
            )
        if seen.request_id is not None:
            return services.get_request(session, seen.request_id)
        if seen.commitment_id is not None:
            return services.get_commitment(session, seen.commitment_id)
    # The row goes in first: a second copy sent at the same moment waits on its unique key and
    # is refused, instead of applying the message a second time.
    kept = AidRmMessage(
        city_id=actor.city_id, message_id=message.message_id, message_type=message.type.value, digest=digest
    )
    session.add(kept)
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(
            f"message {message.message_id} is being applied by another delivery; send it again later",
            reason="message_in_flight",
        ) from error
    result = _apply(session, actor, message)
    if isinstance(result, AidRequest):
        kept.request_id = result.id
    else:
        kept.commitment_id = result.id
    session.flush()
    return result


def _apply(session: DbSession, actor: Actor, message: rm.RmMessage) -> AidRequest | AidCommitment:
    if message.type is rm.MessageType.REQUEST_RESOURCE:
        lines = rm.lines_from_rm(message)
        city = actor.name
        contact = Contact(name=city[:64], phone="00000", role="EDXL-RM")
        return services.create_request(
            session,
            actor,
            title=(message.description or message.message_id)[:200],
            lines=lines,
            contact=contact,
        )
    if message.type is rm.MessageType.COMMIT_RESOURCE:
        match = _OFFER_ID.match(message.preceding_message_id or "")
        if match is None:
            raise InvalidInput("a CommitResource must answer one of the hub's offers (PrecedingMessageID)")
        commitment = services.commitment_by_public_id(session, uuid.UUID(match["commitment"]))
        if actor.city_id != commitment.owner_city_id:
            raise Forbidden("only the owning city commits its resource")
        order = next((r.order_id for r in message.resources if r.order_id), None)
        if not order:
            raise InvalidInput("a CommitResource carries the owner's OrderID")
        if commitment.state == AidState.AUTHORISED.value and commitment.order_number == order:
            return commitment  # the same commitment authorised by another message with the same order
        return services.authorise(session, actor, commitment.id, order)
    raise InvalidInput(f"the hub imports RequestResource and CommitResource, not {message.type.value}")
