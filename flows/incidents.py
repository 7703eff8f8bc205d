"""Notify the cities around an incident: the affected ones and their neighbours."""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.bookkeeping import REQUEST_HOOKS
from flows.consultations import request_proposal
from flows.context import hub_session, hub_settings
from hub.incidents import notifications as notification_service
from hub.incidents import services as incident_service

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def plan_recipients(incident_id: int) -> list[tuple[str, str]]:
    """Return (city, reason) for every city the incident must reach."""
    with hub_session() as session:
        incident = incident_service.get_incident(session, incident_id)
        return notification_service.recipients(incident)


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def notify_city(incident_id: int, city: str, reason: str, run_id: str | None) -> bool:
    """Deliver the notification to one city; return False when it was already there."""
    with hub_session() as session:
        _, created = notification_service.deliver(
            session, incident_id, city, reason, flow_run_id=run_id, mqtt_root=hub_settings().mqtt_root
        )
    return created


@flow(name="notify-neighbours", **REQUEST_HOOKS)
def notify_neighbours(incident_id: int, request_id: int | None = None) -> dict[str, int]:
    """Notify every affected and neighbouring city of an incident, once each."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else None
    recipients = plan_recipients(incident_id)
    created = sum(notify_city(incident_id, city, reason, run_id) for city, reason in recipients)
    logger.info("incident %s: %d cities, %d new notifications", incident_id, len(recipients), created)
    # A serious incident also calls for a joint consultation; the request is keyed by incident.
    request_proposal(incident_id)
    return {"recipients": len(recipients), "created": created}


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def plan_update_recipients(update_id: int) -> list[str]:
    """Return the cities told about the incident before the change."""
    with hub_session() as session:
        return notification_service.update_recipients(session, update_id)


@task(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def notify_city_of_update(update_id: int, city: str, run_id: str | None) -> bool:
    """Deliver the notice of a change to one city; return False when it was already there."""
    with hub_session() as session:
        _, created = notification_service.deliver_update(
            session, update_id, city, flow_run_id=run_id, mqtt_root=hub_settings().mqtt_root
        )
    return created


@flow(name="notify-incident-update", **REQUEST_HOOKS)
def notify_incident_update(update_id: int, request_id: int | None = None) -> dict[str, int]:
    """Tell every city already told about an incident what changed, once each."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else None
    recipients = plan_update_recipients(update_id)
    created = sum(notify_city_of_update(update_id, city, run_id) for city in recipients)
    logger.info("incident update %s: %d cities, %d new notices", update_id, len(recipients), created)
    return {"recipients": len(recipients), "created": created}
