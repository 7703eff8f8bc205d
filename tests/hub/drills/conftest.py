"""Factories for drills: a plan, an MSEL, and a drill built through the services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from contracts.drills import DrillPlan
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import User
from hub.kernel.types import utcnow

MSEL_CSV = (
    "number,offset,city,channel,message,expected_action,expected_within,contingency_of\r\n"
    "1,0:00:00,linyi,desk_notice,上游水位超警戒,notice_read,0:10:00,\r\n"
    "2,0:05:00,linyi,incident,临沂河段出现管涌,,,\r\n"
    "3,0:10:00,linyi,bulletin,请核实堤防情况,receipt_signed,0:20:00,\r\n"
    "4,0:20:00,linyi,desk_notice,请再次确认（补充）,notice_read,0:10:00,1\r\n"
)


def plan_data(**overrides: Any) -> dict[str, Any]:
    """Return a valid drill plan for Xuzhou controlling and Linyi playing."""
    start = utcnow().replace(microsecond=0) + timedelta(hours=1)
    data: dict[str, Any] = {
        "name": "沂沭河防汛桌面推演",
        "drill_type": "tabletop",
        "scope": "combined",
        "plans": ["防汛应急预案"],
        "controlling_city": "xuzhou",
        "participating_cities": ["xuzhou", "linyi"],
        "objectives": [
            {"ref": "O1", "title": "信息报送", "critical_tasks": [{"ref": "T1", "title": "接报"}]}
        ],
        "startex": start,
        "endex": start + timedelta(hours=2),
        "controllers": [{"name": "controller", "city": "xuzhou"}],
        "evaluators": [{"name": "evaluator", "city": "xuzhou"}],
    }
    data.update(overrides)
    return data


@pytest.fixture
def controller(app: Flask, make_user: Callable[..., User]) -> Actor:
    """Return a coordinator of the controlling city (Xuzhou)."""
    return Actor.for_user(make_user("controller", "xuzhou"))


@pytest.fixture
def make_drill(app: Flask, controller: Actor) -> Callable[..., Drill]:
    """Create a drill with the sample MSEL; approved unless told otherwise."""

    def make(*, approved: bool = True, csv: str = MSEL_CSV, **plan: Any) -> Drill:
        drill = services.create(db.session, controller, DrillPlan.model_validate(plan_data(**plan)))
        services.import_msel(db.session, controller, drill.id, csv.encode())
        if approved:
            services.approve(db.session, controller, drill.id)
        db.session.commit()
        return drill

    return make


def played_to_endex(drill: Drill) -> Drill:
    """Start a drill and end it at once (nothing delivered): a drill ready for its evaluation."""
    services.start(db.session, drill.id)
    services.end(db.session, drill.id)
    db.session.commit()
    return drill
