"""API for drills: the inject table's live states, for a page that updates without a reload."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from pydantic import SerializerFunctionWrapHandler, model_serializer

from contracts.drills import Inject, PlayerInject
from hub.drills import services as drills
from hub.drills.models import DrillInject
from hub.extensions import db
from web.api.models import Out, StoredTime
from web.api.spec import operation
from web.auth import api_auth, current_actor

bp = Blueprint("drills_api", __name__, url_prefix="/api/v1")
TAGS = ("drills",)


class InjectInPlay(Out):
    """Where an inject stands in play; its timing and flag are shown to controllers and evaluators."""

    state: str
    due_at: StoredTime | None
    delivered_at: StoredTime | None
    flagged: bool | None

    @model_serializer(mode="wrap")
    def _leave_out_what_the_inject_lacks(self, handler: SerializerFunctionWrapHandler) -> Any:
        # The inject's own fields are answered only when it has them; the state's always are.
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k in InjectInPlay.model_fields}


class ControlledInject(Inject, InjectInPlay):
    """An inject as controllers and evaluators see it (and players after ENDEX), with its state."""


class PlayedInject(PlayerInject, InjectInPlay):
    """An inject as a player of its city sees it during play, with its state."""


class DrillInjects(Out):
    """A drill's status and the injects the caller may see."""

    status: str
    injects: list[ControlledInject | PlayedInject]


def _in_play(row: DrillInject, sees: bool) -> ControlledInject | PlayedInject:
    state = {
        "state": row.state,
        "due_at": row.due_at if sees else None,
        "delivered_at": row.delivered_at,
        "flagged": row.flagged_at is not None if sees else None,
    }
    if sees:
        return ControlledInject.model_validate({**dict(drills.to_inject(row)), **state})
    return PlayedInject.model_validate({**dict(drills.for_players(row)), **state})


@bp.get("/drills/<int:drill_id>/injects")
@api_auth
@operation(tags=TAGS, HTTP_200=DrillInjects)
def drill_injects(drill_id: int) -> ResponseReturnValue:
    """Return the drill's injects the caller may see, with their states.

    Players see only what reached their city, without expected actions, until ENDEX.
    """
    drill = drills.get(db.session, drill_id)
    actor = current_actor()
    sees = drills.sees_expectations(actor, drill)
    items = [
        _in_play(row, sees)
        for row in drill.injects
        if sees or (row.city_id == actor.city_id and row.delivered_at is not None)
    ]
    return DrillInjects(status=drill.status, injects=items).model_dump(mode="json")
