"""API for the partner platforms' sync health, and a sync on demand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from hub.extensions import db
from hub.kernel.errors import Forbidden
from hub.partners import services as partners
from web.api.models import Out, StoredTime
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("partners_api", __name__, url_prefix="/api/v1")


TAGS = ("partners",)


class PartnerHealthOut(Out):
    """One city's sync health: last success, lag, last error, records in the last run."""

    city: str
    connected: bool
    last_success: StoredTime | None
    lag_seconds: float | None
    last_error: str | None
    records_last_run: int


class PartnerHealthList(Out):
    """Every city's sync health."""

    items: list[PartnerHealthOut]


class SyncRequested(Out):
    """A sync of the city's platform is queued."""

    city: str
    requested: bool


@bp.get("/partners/health")
@api_auth
@operation(tags=TAGS, HTTP_200=(PartnerHealthList, "Per city"))
def partner_health() -> ResponseReturnValue:
    """Return each city's sync health: last success, lag, last error, records in the last run."""
    now = datetime.now(UTC)
    items = [
        PartnerHealthOut(
            city=h.city.slug,
            connected=h.platform is not None,
            last_success=h.last_success,
            lag_seconds=h.lag_seconds(now),
            last_error=h.last_error,
            records_last_run=h.records_last_run,
        )
        for h in partners.health(db.session)
    ]
    return PartnerHealthList(items=items).model_dump(mode="json")


@bp.post("/partners/<slug>/sync")
@api_auth
@operation(tags=TAGS, HTTP_202=(SyncRequested, "Requested"))
def partner_sync(slug: str) -> ResponseReturnValue:
    """Ask for an immediate sync of a city's platform (its own city, or any for an admin)."""
    actor = current_actor()
    platform = partners.platform_for(db.session, slug)
    if not actor.is_admin and not (actor.can_write_incidents and actor.city_id == platform.city_id):
        raise Forbidden("you may start a sync of your own city's platform only")
    partners.request_sync(db.session, slug, f"manual-{uuid.uuid4()}")
    db.session.commit()
    kick_flows(current_app)
    return SyncRequested(city=slug, requested=True).model_dump(mode="json"), 202
