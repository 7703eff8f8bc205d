"""Deliver verification requests to the asked city's platform, and chase late answers."""

from __future__ import annotations

import logging

from prefect import flow, task

from connectors.partner_client import PartnerError
from contracts.partner import VerificationRequestDelivery
from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, partner_client
from hub.verifications import services as verifications

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]


# Verification requests -------------------------------------------------------------------------


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def deliver_verification(verification_id: int) -> str:
    """Deliver a verification request to the asked city's platform, once."""
    with hub_session() as session:
        request = verifications.undelivered(session, verification_id)
        if request is None:
            return "already"
        delivery = VerificationRequestDelivery(
            id=request.public_id,
            from_city=request.from_city.slug,
            to_city=request.to_city.slug,
            incident_ref=str(request.incident_id or request.public_id),
            question=request.question,
            deadline=request.deadline,
            issued_at=request.issued_at,
        )
        city = request.to_city.slug
    found = partner_client(city)
    if found is None:
        with hub_session() as session:
            verifications.record_delivery(session, verification_id)
        return "hub"
    client, _ = found
    try:
        client.deliver_verification_request(delivery)
    except PartnerError as exc:
        with hub_session() as session:
            verifications.record_delivery(session, verification_id, error=str(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        verifications.record_delivery(session, verification_id)
    return "delivered"


@flow(name="deliver-verification", **REQUEST_HOOKS)
def deliver_verification_request(verification_id: int, request_id: int | None = None) -> str:
    """Deliver one verification request to the asked city's platform."""
    return deliver_verification(verification_id)


@flow(name="chase-verifications", **REQUEST_HOOKS)
def chase_verifications(request_id: int | None = None) -> dict[str, int]:
    """Remind and flag cities late with their answers to verification requests."""
    with hub_session() as session:
        return verifications.chase_late(session)
