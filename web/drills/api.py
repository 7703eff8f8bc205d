"""API for drills: the inject table's live states, for a page that updates without a reload."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from hub.drills import services as drills
from hub.extensions import db
from web.auth import api_auth, current_actor

bp = Blueprint("drills_api", __name__, url_prefix="/api/v1")


@bp.get("/drills/<int:drill_id>/injects")
@api_auth
def drill_injects(drill_id: int) -> ResponseReturnValue:
    """Return the drill's injects the caller may see, with their states.

    Players see only what reached their city, without expected actions, until ENDEX.
    """
    drill = drills.get(db.session, drill_id)
    actor = current_actor()
    sees = drills.sees_expectations(actor, drill)
    items = []
    for row in drill.injects:
        if not sees and (row.city_id != actor.city_id or row.delivered_at is None):
            continue
        shown = drills.to_inject(row) if sees else drills.for_players(row)
        items.append(
            {
                **shown.model_dump(mode="json", exclude_none=True),
                "state": row.state,
                "due_at": row.due_at.isoformat() if row.due_at and sees else None,
                "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
                "flagged": row.flagged_at is not None if sees else None,
            }
        )
    return jsonify(status=drill.status, injects=items)
