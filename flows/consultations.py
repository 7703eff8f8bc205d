"""Consultations and the regular conference: propose, invite, remind, open at the start, plan, chase.

Each flow is one short step started by a keyed flow request: the call (invitations), a Schedule
tick (reminders, the quorum at the start, the next regular meeting, an action item's reminder
slot) or the incident notification flow (a proposal). No flow waits for people: what they owe is
a row, and the next tick asks for the next step, so a hub killed at any point sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from prefect import flow, task

from connectors.partner_client import PartnerError, is_permanent
from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, partner_client
from hub.action_items import services as action_items
from hub.consultations import services as consultations

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]
# A meeting invites the ten cities and a few experts; each delivery waits on a platform's answer.
PLATFORM_THREADS = 16


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def request_proposal(incident_id: int) -> bool:
    """Ask for a consultation on the incident if it qualifies; return whether it does."""
    with hub_session() as session:
        return consultations.request_proposal(session, incident_id)


@flow(name="propose-consultation", **REQUEST_HOOKS)
def propose_consultation(incident_id: int, request_id: int | None = None) -> str | None:
    """Propose a consultation on a qualifying incident to its reporting city, once."""
    with hub_session() as session:
        meeting = consultations.propose_for_incident(session, incident_id)
        return str(meeting.public_id) if meeting is not None else None


def _deliver_once(kind: str, row_id: int) -> str:
    """Deliver one invitation (REQUEST or CANCEL) to its city's platform, unless it holds it already."""
    with hub_session() as session:
        owed = consultations.invitation_delivery(session, kind, row_id)
    if owed is None:
        return "already"
    city, delivery = owed
    found = partner_client(city)
    if found is None:
        # No platform: the city answers on its desk in the hub, which already shows it.
        with hub_session() as session:
            consultations.record_platform_delivery(session, kind, row_id, delivery.sequence, None)
        return "hub"
    client, _ = found
    try:
        ack = client.deliver_meeting_invitation(delivery)
    except PartnerError as exc:
        with hub_session() as session:
            consultations.record_platform_failure(session, kind, row_id, str(exc))
        raise
    finally:
        client.close()
    with hub_session() as session:
        if not ack.accepted:
            consultations.record_platform_failure(session, kind, row_id, f"refused: {ack.reason}")
            return "refused"
        consultations.record_platform_delivery(session, kind, row_id, delivery.sequence, ack.platform_ref)
    return "delivered"


def _deliver_with_retries(kind: str, row_id: int) -> str:
    """Deliver one invitation, trying again after each of RETRY_DELAYS while the failure is transient.

    The retries are per invitation, as a Prefect task's would be, and stop at once on an answer
    that asking again cannot change (`is_permanent`). An invitation still not taken is kept owed
    with its error, and the scheduler's next round (`schedule_platform_retries`) tries it again.
    """
    for attempt, delay in enumerate([*RETRY_DELAYS, 0.0]):
        try:
            return _deliver_once(kind, row_id)
        except PartnerError as exc:
            if attempt == len(RETRY_DELAYS) or is_permanent(exc):
                log.warning("%s invitation %s not taken by its platform: %s", kind, row_id, exc)
                return "failed"
        time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns")


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def deliver_to_platforms(meeting_id: int) -> dict[str, int]:
    """Deliver every invitation the platforms do not hold at the meeting's SEQUENCE, concurrently.

    One task, one thread per invitation: the deliveries are HTTP calls that wait on ten
    platforms, and a Prefect task each cost more in the Prefect server than the calls themselves
    (docs/PERFORMANCE.md, "Consultation"). Exactly once stays with the hub and the platform: a
    delivery is owed until `record_platform_delivery` notes its SEQUENCE, and the platform keeps
    the first of a repeated (id, SEQUENCE). A re-run of the task delivers only what is still owed.
    """
    with hub_session() as session:
        owed = consultations.platform_deliveries_owed(session, meeting_id)
    outcomes: dict[str, int] = {}
    if not owed:
        return outcomes
    with ThreadPoolExecutor(
        max_workers=min(len(owed), PLATFORM_THREADS), thread_name_prefix="invite"
    ) as pool:
        results = list(pool.map(lambda owing: _deliver_with_retries(*owing), owed))
    for key in results:
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


@flow(name="deliver-invitations", **REQUEST_HOOKS)
def deliver_invitations(meeting_id: int, request_id: int | None = None) -> dict[str, int]:
    """Deliver a meeting's invitations to the invited cities' platforms, all at once.

    The desks already hold them: the transaction that called the meeting put them there. The
    cities and the registry's experts are invited; an update or a cancellation (the meeting's
    SEQUENCE raised) goes to the platforms that hold the invitation, as iTIP REQUEST or CANCEL.
    """
    outcomes = deliver_to_platforms(meeting_id)
    if outcomes.get("failed"):
        # Kept as owed with the error; the scheduler asks for another round.
        log.warning("meeting %s: %d invitations not taken by platforms yet", meeting_id, outcomes["failed"])
    return outcomes


@flow(name="remind-invitations", **REQUEST_HOOKS)
def remind_invitations(meeting_id: int, as_of: str, request_id: int | None = None) -> int:
    """Remind the invited cities that have not answered by `as_of` (the tick's time), each once."""
    with hub_session() as session:
        return consultations.remind_unanswered(session, meeting_id, datetime.fromisoformat(as_of))


@flow(name="check-quorum", **REQUEST_HOOKS)
def check_quorum(meeting_id: int, request_id: int | None = None) -> bool | None:
    """At the start, open the session and say whether the quorum is met."""
    with hub_session() as session:
        result = consultations.open_session(session, meeting_id)
    if result is not None and not result.met:
        log.info("meeting %s opens without quorum (%d of %d)", meeting_id, result.represented, result.needed)
    return None if result is None else result.met


@flow(name="plan-conference", **REQUEST_HOOKS)
def plan_conference(body_id: int, seq: int, request_id: int | None = None) -> str | None:
    """Create the next regular meeting 30 days ahead, with invitations and carried-over items."""
    with hub_session() as session:
        meeting = consultations.create_regular_meeting(session, body_id, seq)
        return str(meeting.public_id) if meeting is not None else None


@flow(name="send-agenda", **REQUEST_HOOKS)
def send_agenda(meeting_id: int, request_id: int | None = None) -> bool:
    """At the agenda deadline, close submissions and send the agenda to the members."""
    with hub_session() as session:
        return consultations.send_agenda(session, meeting_id)


@flow(name="distribute-minutes", **REQUEST_HOOKS)
def distribute_minutes(meeting_id: int, request_id: int | None = None) -> str | None:
    """Issue the signed minutes to the member cities as a restricted bulletin with receipts, once."""
    with hub_session() as session:
        bulletin_id = consultations.distribute_minutes(session, meeting_id)
        return str(bulletin_id) if bulletin_id is not None else None


@flow(name="remind-action-item", **REQUEST_HOOKS)
def remind_action_item(
    action_item_id: int,
    key: str,
    kind: str,
    days: int,
    notify_chair: bool,
    request_id: int | None = None,
) -> bool:
    """Send one reminder slot of an action item to its owner (and the chair when overdue), once."""
    with hub_session() as session:
        return action_items.record_reminder(
            session, action_item_id, key=key, kind=kind, days=days, notify_chair=notify_chair
        )
