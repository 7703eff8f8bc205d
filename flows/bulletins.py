"""Distribute bulletins to the cities' platforms, forward receipts to the issuer, chase late ones.

Every task opens its own session and works from ids, and every write is guarded by what the
database already holds, so a retried task or a re-run flow does nothing twice."""

from __future__ import annotations

import logging
from datetime import datetime

from prefect import Task, flow, task
from prefect.client.schemas.objects import TaskRun
from prefect.futures import wait
from prefect.states import State

from connectors.partner_client import PartnerError, is_permanent
from contracts.bulletins import BulletinMessage
from contracts.partner import BulletinDelivery, Receipt
from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, partner_client
from hub.bulletins import export as bulletin_export
from hub.bulletins import services as bulletins

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]


# Bulletins -------------------------------------------------------------------------------------


def _delivery(message: BulletinMessage, cancelled_at: datetime | None = None) -> BulletinDelivery:
    # The platform contract carries the exercise flag; the drill's id stays in the hub (and CAP).
    body = message.model_dump(exclude={"cancelled", "expires_at", "exercise_ref"})
    return BulletinDelivery.model_validate({**body, "cancelled_at": cancelled_at})


def worth_retrying(task: Task[..., object], task_run: TaskRun, state: State[object]) -> bool:
    """Let Prefect retry a delivery unless the platform's answer says asking again cannot help."""
    error = state.data
    return not (isinstance(error, BaseException) and is_permanent(error))


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=worth_retrying)
def deliver_bulletin(bulletin_id: int, recipient_id: int) -> str:
    """Deliver a bulletin to one addressed city's platform, unless it already accepted it."""
    with hub_session() as session:
        bulletin = bulletins.get_by_id(session, bulletin_id)
        recipient = next(r for r in bulletin.recipients if r.id == recipient_id)
        if recipient.delivered_at is not None:
            return "already"
        city = recipient.city.slug
        delivery = _delivery(bulletin_export.to_message(bulletin))
    found = partner_client(city)
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
            bulletins.record_delivery_failure(session, recipient_id, str(exc), permanent=is_permanent(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        if not ack.accepted:
            bulletins.record_delivery_failure(session, recipient_id, f"refused: {ack.reason}", permanent=True)
            return "refused"
        # A receipt in the platform's answer is the machine's, not a person's: delivery only.
        bulletins.record_delivery(session, recipient_id, platform_ref=ack.platform_ref)
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


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=worth_retrying)
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
            if r.receipt_at is not None  # always, by the query; said again for the contract's sake
        ]
    if not pending:
        return 0
    found = partner_client(issuer)
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


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=worth_retrying)
def forward_issuer_receipts(bulletin_ids: list[int]) -> int:
    """Pass one issuing city's new receipts on to its platform, bulletin by bulletin."""
    return sum(forward_receipts(bulletin_id) for bulletin_id in bulletin_ids)


@flow(name="forward-receipts", **REQUEST_HOOKS)
def forward_receipts_flow(bulletin_ids: list[int], request_id: int | None = None) -> int:
    """Pass receipts recorded after the distribution on to the issuing cities' platforms.

    A task per issuing city, side by side; one whose platform is down is tried again at the
    next slot (what it passed on before failing stays passed on) and fails no other city.
    """
    by_issuer: dict[int, list[int]] = {}
    with hub_session() as session:
        for bulletin_id in bulletin_ids:
            by_issuer.setdefault(bulletins.get_by_id(session, bulletin_id).issuing_city_id, []).append(
                bulletin_id
            )
    futures = [forward_issuer_receipts.submit(ids) for ids in by_issuer.values()]
    wait(futures)
    failed = [f for f in futures if not f.state.is_completed()]
    if failed:
        log.warning("receipts: %d issuing platforms not reached yet", len(failed))
    return sum(f.result() for f in futures if f.state.is_completed())


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=worth_retrying)
def deliver_cancellation(bulletin_id: int, recipient_id: int) -> str:
    """Tell one city's platform that already took a bulletin that its issuer cancelled it."""
    with hub_session() as session:
        bulletin = bulletins.get_by_id(session, bulletin_id)
        recipient = next(r for r in bulletin.recipients if r.id == recipient_id)
        if recipient.cancel_delivered_at is not None:
            return "already"
        city = recipient.city.slug
        delivery = _delivery(bulletin_export.to_message(bulletin), cancelled_at=bulletin.cancelled_at)
    found = partner_client(city)
    if found is None:
        with hub_session() as session:
            bulletins.mark_cancel_delivered(session, recipient_id)
        return "hub"
    client, _ = found
    try:
        client.deliver_bulletin(delivery)
    finally:
        client.close()
    with hub_session() as session:
        bulletins.mark_cancel_delivered(session, recipient_id)
    return "cancelled"


@flow(name="deliver-bulletin-cancellation", **REQUEST_HOOKS)
def deliver_bulletin_cancellation(bulletin_id: int, request_id: int | None = None) -> dict[str, int]:
    """Tell every platform that took a cancelled bulletin about the cancellation."""
    with hub_session() as session:
        pending = [r.id for r in bulletins.cancellations_to_deliver(session, bulletin_id)]
    futures = [deliver_cancellation.submit(bulletin_id, recipient_id) for recipient_id in pending]
    wait(futures)
    outcomes: dict[str, int] = {}
    for future in futures:
        key = future.result() if future.state.is_completed() else "failed"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


# Deadlines and daily reports -------------------------------------------------------------------


@flow(name="chase-receipts", **REQUEST_HOOKS)
def chase_receipts(request_id: int | None = None) -> dict[str, int]:
    """Remind and flag cities late with their receipts."""
    with hub_session() as session:
        return bulletins.chase_late_receipts(session)
