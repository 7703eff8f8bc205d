"""Information-exchange flows: pull partner feeds, distribute bulletins, deliver verification
requests, chase late receipts and answers, and check the daily reports.

Every task opens its own session and works from ids, and every write is an upsert or is guarded
by what the database already holds, so a retried task or a re-run flow does nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from prefect import flow, task
from prefect.futures import wait

from connectors.partner_client import PartnerClient, PartnerContractError, PartnerError
from contracts.partner import BulletinDelivery, Receipt, VerificationRequestDelivery
from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session
from hub.models import utcnow
from hub.services import bulletin_export, bulletins, daily_reports, dead_letters, partners, verifications
from hub.services.errors import NotFound

log = logging.getLogger(__name__)
RETRY_DELAYS = [1, 5, 15]


def _client(city: str) -> tuple[PartnerClient, int] | None:
    """Return a client of the city's platform and the city's id, or None when it has none."""
    with hub_session() as session:
        try:
            platform = partners.platform_for(session, city)
        except NotFound:
            return None
        return PartnerClient(platform.base_url, platform.outbound_token), platform.city_id


# Sync ------------------------------------------------------------------------------------------


@task(retries=2, retry_delay_seconds=[2, 10])
def sync_feed(city: str, feed: str) -> int:
    """Pull one feed from its cursor; each page's rows and the cursor commit together."""
    found = _client(city)
    if found is None:
        return 0
    client, city_id = found
    started = utcnow()
    with hub_session() as session:
        cursor = partners.begin_run(session, city_id, feed, started)
    changed = 0
    try:
        for page in client.iter_changes(feed, cursor):
            items = [
                partners.FeedItem(item.id, item.updated_at, item.model_dump(mode="json"))
                for item in page.items
            ]
            with hub_session() as session:
                changed += partners.apply_page(
                    session, city_id, feed, items, page.next_cursor, run_started=started
                )
    except PartnerContractError as exc:
        # A broken payload will not mend itself on retry: keep it for a person and stop this feed.
        with hub_session() as session:
            dead_letters.record(session, "partner", exc.url, str(exc), exc.raw)
            partners.finish_run(session, city_id, feed, error=str(exc))
        return changed
    except PartnerError as exc:
        with hub_session() as session:
            partners.finish_run(session, city_id, feed, error=str(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        partners.finish_run(session, city_id, feed)
    return changed


@flow(name="sync-partner", **REQUEST_HOOKS)
def sync_partner(city: str, request_id: int | None = None) -> dict[str, int]:
    """Bring one city's incidents, warnings and resources up to date."""
    results: dict[str, int] = {}
    failed = []
    for feed in partners.FEEDS:
        try:
            results[feed] = sync_feed(city, feed)
        except PartnerError as exc:
            failed.append(f"{feed}: {exc}")
    if failed:
        raise RuntimeError(f"sync of {city} incomplete: {'; '.join(failed)}")
    return results


# Bulletins -------------------------------------------------------------------------------------


def _delivery(message: object) -> BulletinDelivery:
    body = message.model_dump(exclude={"cancelled", "expires_at"})  # type: ignore[attr-defined]
    return BulletinDelivery.model_validate(body)


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def deliver_bulletin(bulletin_id: int, recipient_id: int) -> str:
    """Deliver a bulletin to one addressed city's platform, unless it already accepted it."""
    with hub_session() as session:
        bulletin = bulletins.get_by_id(session, bulletin_id)
        recipient = next(r for r in bulletin.recipients if r.id == recipient_id)
        if recipient.delivered_at is not None:
            return "already"
        city = recipient.city.slug
        delivery = _delivery(bulletin_export.to_message(bulletin))
    found = _client(city)
    if found is None:
        # No platform: the city reads the bulletin in the hub, which already holds it.
        with hub_session() as session:
            bulletins.record_delivery(session, recipient_id, platform_ref=None)
        return "hub"
    client, _ = found
    try:
        ack = client.deliver_bulletin(delivery)
    except PartnerError as exc:
        with hub_session() as session:
            bulletins.record_delivery_failure(session, recipient_id, str(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        if not ack.accepted:
            bulletins.record_delivery_failure(session, recipient_id, f"refused: {ack.reason}")
            return "refused"
        receipt = ack.receipt
        bulletins.record_delivery(
            session,
            recipient_id,
            platform_ref=ack.platform_ref,
            receipt_at=receipt.received_at if receipt else None,
            acknowledged_by=receipt.acknowledged_by if receipt else None,
        )
    return "delivered"


@flow(name="distribute-bulletin", **REQUEST_HOOKS)
def distribute_bulletin(bulletin_id: int, request_id: int | None = None) -> dict[str, int]:
    """Deliver a bulletin to every addressed city not yet reached, all at once."""
    with hub_session() as session:
        pending = [r.id for r in bulletins.undelivered(session, bulletin_id)]
    futures = [deliver_bulletin.submit(bulletin_id, recipient_id) for recipient_id in pending]
    wait(futures)
    outcomes: dict[str, int] = {}
    for future in futures:
        state = future.state
        key = future.result() if state.is_completed() else "failed"
        outcomes[key] = outcomes.get(key, 0) + 1
    if outcomes.get("failed"):
        # The rest stays in the outbox; the scheduler asks for another round later.
        log.warning("bulletin %s: %d cities not reached yet", bulletin_id, outcomes["failed"])
    forward_receipts(bulletin_id)
    return outcomes


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def forward_receipts(bulletin_id: int) -> int:
    """Pass the bulletin's new receipts on to the issuing city's own platform; return how many."""
    with hub_session() as session:
        bulletin = bulletins.get_by_id(session, bulletin_id)
        issuer = bulletin.issuing_city.slug
        pending = [
            (
                r.id,
                Receipt(
                    bulletin_id=bulletin.public_id,
                    city=r.city.slug,
                    received_at=r.receipt_at,
                    acknowledged_by=r.acknowledged_by or "platform",
                ),
            )
            for r in bulletins.receipts_to_forward(session, bulletin_id)
        ]
    if not pending:
        return 0
    found = _client(issuer)
    if found is None:
        # The issuer works in the hub itself, where the receipts already are.
        with hub_session() as session:
            for recipient_id, _ in pending:
                bulletins.mark_forwarded(session, recipient_id)
        return 0
    client, _ = found
    try:
        for recipient_id, receipt in pending:
            client.send_receipt(receipt)
            with hub_session() as session:
                bulletins.mark_forwarded(session, recipient_id)
    finally:
        client.close()
    return len(pending)


@flow(name="forward-receipts", **REQUEST_HOOKS)
def forward_receipts_flow(bulletin_id: int, request_id: int | None = None) -> int:
    """Pass receipts recorded after the distribution on to the issuing city's platform."""
    return forward_receipts(bulletin_id)


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
    found = _client(city)
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


# Deadlines and daily reports -------------------------------------------------------------------


@flow(name="chase-deadlines", **REQUEST_HOOKS)
def chase_deadlines(request_id: int | None = None) -> dict[str, int]:
    """Remind and flag cities late with receipts and verification answers."""
    with hub_session() as session:
        receipts = bulletins.chase_late_receipts(session)
        answers = verifications.chase_late(session)
    return {
        "receipts_reminded": receipts["reminded"],
        "receipts_flagged": receipts["flagged"],
        "answers_reminded": answers["reminded"],
        "answers_flagged": answers["flagged"],
    }


@flow(name="check-daily-reports", **REQUEST_HOOKS)
def check_daily_reports(day: str, request_id: int | None = None) -> list[str]:
    """Remind every city that has not filed its report for the day; return them."""
    with hub_session() as session:
        return daily_reports.remind_missing(session, datetime.fromisoformat(day).date())
