"""API for verification requests (核报): ask, answer, and platforms' answers."""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from contracts.errors import ContractError, Problem
from contracts.partner import VerificationAnswer
from contracts.verifications import VerificationAnswerCreate, VerificationCreate
from hub.extensions import db
from hub.verifications import services as verifications
from hub.verifications.models import VerificationRequest
from web.api.models import ErrorBody, Out, StoredTime
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("verifications_api", __name__, url_prefix="/api/v1")
TAGS = ("verifications",)


class VerificationOut(Out):
    """A verification request (核报) and its answer, as both cities see it."""

    id: uuid.UUID
    from_city: str
    to_city: str
    subject: str
    question: str
    deadline: StoredTime
    answer: str | None
    answered_at: StoredTime | None
    flagged: bool


class VerificationList(Out):
    """Verification requests the caller's city sent or received."""

    items: list[VerificationOut]


def _verification(item: VerificationRequest) -> VerificationOut:
    return VerificationOut(
        id=item.public_id,
        from_city=item.from_city.slug,
        to_city=item.to_city.slug,
        subject=item.subject,
        question=item.question,
        deadline=item.deadline,
        answer=item.answer,
        answered_at=item.answered_at,
        flagged=item.flagged_at is not None,
    )


@bp.get("/verifications")
@api_auth
@operation(tags=TAGS, HTTP_200=(VerificationList, "Newest first"))
def list_verifications() -> ResponseReturnValue:
    """List verification requests the caller's city sent or received."""
    city_id = current_actor().city_id
    items = verifications.for_city(db.session, city_id) if city_id else []
    return VerificationList(items=[_verification(v) for v in items]).model_dump(mode="json")


@bp.post("/verifications")
@api_auth
@operation(json=VerificationCreate, tags=TAGS, HTTP_201=(VerificationOut, "Sent"))
def create_verification(body: VerificationCreate) -> ResponseReturnValue:
    """Send a verification request (核报) to another city."""
    item = verifications.create(db.session, current_actor(), body)
    db.session.commit()
    kick_flows(current_app)
    return _verification(item).model_dump(mode="json"), 201


@bp.post("/verifications/<uuid:public_id>/answer")
@api_auth
@operation(
    json=VerificationAnswerCreate,
    tags=TAGS,
    HTTP_200=(VerificationOut, "Answered"),
    HTTP_409=(ErrorBody, "Already answered"),
)
def answer_verification(public_id: uuid.UUID, body: VerificationAnswerCreate) -> ResponseReturnValue:
    """Answer a verification request addressed to the caller's city."""
    item = verifications.answer(db.session, current_actor(), public_id, body)
    db.session.commit()
    return _verification(item).model_dump(mode="json")


@bp.post("/verification-requests/<uuid:public_id>/answers")
@api_auth
@operation(
    json=VerificationAnswer,
    tags=TAGS,
    HTTP_200=(VerificationOut, "Answered"),
    HTTP_409=(ErrorBody, "Already answered"),
)
def answer_from_platform(public_id: uuid.UUID, body: VerificationAnswer) -> ResponseReturnValue:
    """Take a platform's answer in the partner contract's form (`VerificationAnswer`)."""
    if body.request_id != public_id:
        raise ContractError(
            "request_id in the body differs from the one in the path",
            [Problem("request_id", "does not match the path")],
        )
    answer = VerificationAnswerCreate(answer=body.answer)
    item = verifications.answer(db.session, current_actor(), public_id, answer)
    db.session.commit()
    return _verification(item).model_dump(mode="json")
