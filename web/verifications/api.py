"""API for verification requests (核报): ask, answer, and platforms' answers."""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from contracts.errors import ContractError, Problem
from contracts.partner import VerificationAnswer
from contracts.verifications import VerificationAnswerCreate, VerificationCreate
from hub.extensions import db
from hub.verifications import services as verifications
from web.api import params
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("verifications_api", __name__, url_prefix="/api/v1")


def _verification_json(item: object) -> dict[str, object]:
    return {
        "id": str(item.public_id),  # type: ignore[attr-defined]
        "from_city": item.from_city.slug,  # type: ignore[attr-defined]
        "to_city": item.to_city.slug,  # type: ignore[attr-defined]
        "subject": item.subject,  # type: ignore[attr-defined]
        "question": item.question,  # type: ignore[attr-defined]
        "deadline": item.deadline.isoformat(),  # type: ignore[attr-defined]
        "answer": item.answer,  # type: ignore[attr-defined]
        "answered_at": item.answered_at.isoformat() if item.answered_at else None,  # type: ignore[attr-defined]
        "flagged": item.flagged_at is not None,  # type: ignore[attr-defined]
    }


@bp.get("/verifications")
@api_auth
def list_verifications() -> ResponseReturnValue:
    """List verification requests the caller's city sent or received."""
    city_id = current_actor().city_id
    items = verifications.for_city(db.session, city_id) if city_id else []
    return jsonify(items=[_verification_json(v) for v in items])


@bp.post("/verifications")
@api_auth
def create_verification() -> ResponseReturnValue:
    """Send a verification request (核报) to another city."""
    item = verifications.create(db.session, current_actor(), params.json_body(VerificationCreate))
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_verification_json(item)), 201


@bp.post("/verifications/<uuid:public_id>/answer")
@api_auth
def answer_verification(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer a verification request addressed to the caller's city."""
    data = params.json_body(VerificationAnswerCreate)
    item = verifications.answer(db.session, current_actor(), public_id, data)
    db.session.commit()
    return jsonify(_verification_json(item))


@bp.post("/verification-requests/<uuid:public_id>/answers")
@api_auth
def answer_from_platform(public_id: uuid.UUID) -> ResponseReturnValue:
    """Take a platform's answer in the partner contract's form (`VerificationAnswer`)."""
    answer = params.json_body(VerificationAnswer)
    actor = current_actor()
    if answer.request_id != public_id:
        raise ContractError(
            "request_id in the body differs from the one in the path",
            [Problem("request_id", "does not match the path")],
        )
    item = verifications.answer(db.session, actor, public_id, VerificationAnswerCreate(answer=answer.answer))
    db.session.commit()
    return jsonify(_verification_json(item))
