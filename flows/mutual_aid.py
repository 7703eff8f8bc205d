"""Mutual aid's steps that wait on people: asking rings, reminding, expiring, alerting, chasing, closing.

Each flow is one short step started by a keyed flow request (`aid:{request}:ring:{n}`, …) that a
service or a timer wrote; none sleeps or pauses. The wait between steps is rows in the hub's
database (the asks and their deadlines, the holds and when they began) and the schedules in
`hub.mutual_aid.services` that look at them. Every task works from ids in its own session and
does nothing the database says is already done, so a re-run flow changes nothing.
"""

from __future__ import annotations

import logging

from prefect import flow, task

from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, hub_settings
from hub.mutual_aid import demo as mutual_aid_demo
from hub.mutual_aid import services as mutual_aid
from hub.mutual_aid import upkeep

log = logging.getLogger(__name__)


@task
def ask_cities(aid_request_id: int, ring: int) -> list[str]:
    """Ask the cities of one ring not yet asked; return whom it asked."""
    with hub_session() as session:
        return mutual_aid.ask_ring(session, aid_request_id, ring, fresh_for=upkeep.fresh_for(hub_settings()))


@flow(name="aid-ask-ring", **REQUEST_HOOKS)
def ask_ring(aid_request_id: int, ring: int = 0, request_id: int | None = None) -> list[str]:
    """Rank candidates for a request and ask the owning cities of ring `ring`, with a deadline."""
    asked = ask_cities(aid_request_id, ring)
    if not asked:
        log.info("aid request %s: nobody left to ask in ring %s", aid_request_id, ring)
    return asked


@task
def remind_city(ask_id: int) -> bool:
    """Remind one asked city that has not answered."""
    with hub_session() as session:
        return mutual_aid.remind_ask(session, ask_id)


@flow(name="aid-remind-ask", **REQUEST_HOOKS)
def remind_ask(ask_id: int, request_id: int | None = None) -> bool:
    """Remind an asked city whose deadline is near; nothing if it answered meanwhile."""
    return remind_city(ask_id)


@task
def expire_if_due(commitment_id: int) -> bool:
    """Expire an offer or an unauthorised hold whose time ran out, giving the hold back."""
    with hub_session() as session:
        return mutual_aid.expire_if_due(session, commitment_id)


@flow(name="aid-expire", **REQUEST_HOOKS)
def expire_commitment(commitment_id: int, request_id: int | None = None) -> bool:
    """Expire a stale offer or hold; nothing if it was authorised or closed meanwhile."""
    return expire_if_due(commitment_id)


@task
def alert_requester(commitment_id: int) -> bool:
    """Tell the requesting city that a dispatched resource is overdue on scene."""
    with hub_session() as session:
        return mutual_aid.alert_overdue_arrival(session, commitment_id)


@flow(name="aid-overdue-arrival", **REQUEST_HOOKS)
def alert_overdue_arrival(commitment_id: int, request_id: int | None = None) -> bool:
    """Alert the requesting city about an overdue arrival, once."""
    return alert_requester(commitment_id)


@task
def remind_city_to_verify(city_id: int, week: int, fresh_days: int) -> bool:
    """Write one city's weekly reminder of its unverified registry entries."""
    with hub_session() as session:
        return upkeep.remind_verification(session, city_id, week, fresh_days)


@flow(name="aid-remind-verify", **REQUEST_HOOKS)
def remind_verify(city_id: int, week: int, fresh_days: int, request_id: int | None = None) -> bool:
    """Remind a city, once this week, of registry entries it has not verified lately."""
    return remind_city_to_verify(city_id, week, fresh_days)


@task
def chase_side(commitment_id: int, side: str, round: int) -> bool:
    """Remind one side of an actual cost it has not signed, once per round."""
    with hub_session() as session:
        return upkeep.chase_signature(session, commitment_id, side, round)


@flow(name="aid-chase-signature", **REQUEST_HOOKS)
def chase_signature(commitment_id: int, side: str, round: int, request_id: int | None = None) -> bool:
    """Chase a missing cost signature; nothing if it was signed meanwhile."""
    return chase_side(commitment_id, side, round)


@task
def close_request_if_done(aid_request_id: int) -> bool:
    """End a request that nothing is live on: closed, or unfilled when nothing was ever sent."""
    with hub_session() as session:
        return upkeep.close_if_done(session, aid_request_id, fresh_for=upkeep.fresh_for(hub_settings()))


@flow(name="aid-close-request", **REQUEST_HOOKS)
def close_request(aid_request_id: int, request_id: int | None = None) -> bool:
    """End a finished request, closed or unfilled; nothing if something moved on it meanwhile."""
    return close_request_if_done(aid_request_id)


def play_partners() -> list[str]:
    """Take the demo neighbours' moves that are due on the open Linyi flood requests."""
    with hub_session() as session:
        return mutual_aid_demo.play_partners(session)


@flow(name="aid-demo-partners", **REQUEST_HOOKS)
def play_demo_partners(request_id: int | None = None) -> list[str]:
    """In the demo, answer, authorise, dispatch and take back as Xuzhou, Zaozhuang and Lianyungang."""
    done = play_partners()
    if done:
        log.info("demo partners: %s", "; ".join(done))
    return done
