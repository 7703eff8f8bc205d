"""API for drills: the inject table's live states, for a page that updates without a reload, and
the after-action report's narrative, which the evaluators edit and the lead evaluator finalises."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from flask.typing import ResponseReturnValue
from pydantic import SerializerFunctionWrapHandler, model_serializer

from contracts.drills import AarNarrative, Inject, ObjectiveAssessment, PlayerInject
from hub.drills import services as drills
from hub.drills.models import Drill, DrillInject, DrillStatus
from hub.extensions import db
from hub.kernel.errors import NotFound
from web.api.models import ErrorBody, Out, StoredTime
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


class AarRevisionOut(Out):
    """One saved revision of the report's narrative: who saved it, from which city, when."""

    number: int
    author: str
    city: str
    at: StoredTime


class StaffOut(Out):
    """A person of the drill's staff, by user name and city."""

    name: str
    city: str


class AarOut(Out):
    """The after-action report's narrative: draft or final, its newest text and its revisions."""

    status: Literal["draft", "final"]
    revision: int
    summary: str
    objectives: list[ObjectiveAssessment]
    revisions: list[AarRevisionOut]
    lead_evaluator: StaffOut
    finalised_at: StoredTime | None
    finalised_by: str | None
    final_revision: int | None


class AarSaved(Out):
    """The revision a save of the narrative added."""

    revision: int
    author: str
    at: StoredTime


class AarUnchanged(Out):
    """A save that changed nothing: no revision was added."""

    revision: None


def _reported(drill_id: int) -> Drill:
    drill = drills.get(db.session, drill_id)
    if drill.status != DrillStatus.ENDED or drill.aar is None:
        raise NotFound(f"drill {drill_id} has no after-action report yet")
    return drill


def _aar(drill: Drill) -> AarOut:
    report = drills.aar_report(drill)
    narrative = drills.aar_narrative(drill)
    lead = drills.lead_evaluator(drill)
    return AarOut(
        status="final" if report.is_final else "draft",
        revision=report.number,
        summary=narrative.summary,
        objectives=list(narrative.objectives),
        revisions=[
            AarRevisionOut(number=r.number, author=r.author, city=r.city, at=r.at) for r in report.revisions
        ],
        lead_evaluator=StaffOut(name=lead.name, city=lead.city),
        finalised_at=report.finalised_at,
        finalised_by=report.finalised_by,
        final_revision=report.final_revision,
    )


@bp.get("/drills/<int:drill_id>/aar")
@api_auth
@operation(tags=TAGS, HTTP_200=AarOut)
def drill_aar(drill_id: int) -> ResponseReturnValue:
    """Return the after-action report's narrative, draft or final, with its revisions (after ENDEX,
    once the figures are drafted: the report is everyone's then)."""
    return _aar(_reported(drill_id)).model_dump(mode="json")


@bp.post("/drills/<int:drill_id>/aar/revisions")
@api_auth
@operation(
    json=AarNarrative,
    tags=TAGS,
    HTTP_201=(AarSaved, "Saved as a new revision"),
    HTTP_200=(AarUnchanged, "Nothing changed; no revision added"),
    HTTP_409=(ErrorBody, "The report is final, or a newer revision was saved meanwhile"),
)
def save_drill_aar(drill_id: int, body: AarNarrative) -> ResponseReturnValue:
    """Save the narrative as one of the drill's evaluators: 201 with the new revision, 200 when
    nothing changed, 409 once final or over a newer revision."""
    row = drills.save_aar(db.session, current_actor(), drill_id, body)
    db.session.commit()
    if row is None:
        return AarUnchanged(revision=None).model_dump(mode="json"), 200
    return AarSaved(revision=row.number, author=row.author, at=row.at).model_dump(mode="json"), 201


@bp.post("/drills/<int:drill_id>/aar/finalise")
@api_auth
@operation(
    tags=TAGS,
    HTTP_200=(AarOut, "Final; the narrative is frozen"),
    HTTP_409=(ErrorBody, "The report is already final, or has no narrative yet"),
)
def finalise_drill_aar(drill_id: int) -> ResponseReturnValue:
    """Finalise the report as the drill's lead evaluator; it is frozen from then on."""
    drill = drills.finalise_aar(db.session, current_actor(), drill_id)
    db.session.commit()
    return _aar(drill).model_dump(mode="json")
