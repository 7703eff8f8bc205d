"""Verification requests, daily reports and the partner feed upsert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.verifications import VerificationAnswerCreate, VerificationCreate
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, NotFound
from hub.verifications import services as verifications


def test_verification_request_answered_once_by_the_asked_city(make_user) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    request = verifications.create(
        db.session,
        linyi,
        VerificationCreate(
            to_city="xuzhou",
            subject="核实邳州段堤防险情",
            question="请核实邳州段堤防是否出现管涌。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    db.session.commit()
    with pytest.raises(NotFound):
        verifications.get_for(db.session, Actor.for_user(make_user("hz", "heze")), request.public_id)
    with pytest.raises(Forbidden):
        verifications.answer(db.session, linyi, request.public_id, VerificationAnswerCreate(answer="自答"))
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    verifications.answer(
        db.session, xuzhou, request.public_id, VerificationAnswerCreate(answer="经核实，无管涌。")
    )
    with pytest.raises(Conflict):
        verifications.answer(db.session, xuzhou, request.public_id, VerificationAnswerCreate(answer="again"))
    assert verifications.owed_by(db.session, xuzhou.city_id) == []


def test_late_verification_is_reminded_then_flagged(make_user) -> None:
    request = verifications.create(
        db.session,
        Actor.for_user(make_user("ly", "linyi")),
        VerificationCreate(
            to_city="xuzhou",
            subject="核实",
            question="请核实。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    request.deadline = datetime.now(UTC) - timedelta(minutes=1)
    assert verifications.chase_late(db.session) == {"reminded": 1, "flagged": 0}
    assert verifications.chase_late(db.session, flag_after=timedelta(0)) == {"reminded": 0, "flagged": 1}
