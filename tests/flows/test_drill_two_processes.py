"""Two hub processes (real subprocesses, each ticking its scheduler and running its own flows) and
a duplicated STARTEX trigger from a third: the drill starts once and each inject goes out once."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from contracts.drills import DrillPlan
from flows.drills import drill_startex
from hub.config import Settings
from hub.drills import services
from hub.drills.models import Drill, DrillStatus
from hub.extensions import db
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, FlowRequest, User
from hub.kernel.types import utcnow
from tests.flows.processes import spawn
from tests.flows.test_drills import flow_app, wait_for_report
from tests.hub.drills.conftest import MSEL_CSV, plan_data

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]
__all__ = ["flow_app"]  # the fixture, shared with the drill flows' tests
START_S = 120  # at most this long for both processes to import and tick (a busy 2-core machine)
RUN_S = START_S + 90  # how long each process runs at most before it stops by itself


def _hub(settings: Settings, name: str, seconds: float, log: Path) -> subprocess.Popen[bytes]:
    return spawn(["tests.flows.hub_process", str(seconds)], settings, name, log)


def test_two_hub_processes_and_a_duplicated_trigger_start_the_drill_once(
    flow_app: Flask, settings: Settings, make_user: Callable[..., User], tmp_path: Path
) -> None:
    actor = Actor.for_user(make_user("controller", "xuzhou"))
    logs = [tmp_path / "hub-a.log", tmp_path / "hub-b.log"]
    hubs = [_hub(settings, f"hub-{n}", RUN_S, log) for n, log in zip("ab", logs, strict=True)]
    try:
        deadline = time.monotonic() + START_S
        while not all(log.exists() and "ticking" in log.read_text(errors="replace") for log in logs):
            assert all(h.poll() is None for h in hubs), [log.read_text(errors="replace") for log in logs]
            assert time.monotonic() < deadline, "the hub processes did not start in time"
            time.sleep(0.2)
        # Both tick: a drill approved now starts in three seconds, and plays two hours at 600x
        # (its injects within two seconds of STARTEX, ENDEX at twelve).
        start = utcnow().replace(microsecond=0) + timedelta(seconds=3)
        plan = DrillPlan.model_validate(plan_data(startex=start, endex=start + timedelta(hours=2)))
        drill = services.create(db.session, actor, plan, time_scale=600)
        services.import_msel(db.session, actor, drill.id, MSEL_CSV.encode())
        services.approve(db.session, actor, drill.id)
        db.session.commit()
        while utcnow() < start:
            time.sleep(0.05)
        # The duplicated trigger: a STARTEX run of its own, as a second Prefect run would be.
        drill_startex(drill.id)
        wait_for_report(drill.id, 90)
    finally:
        for hub in hubs:
            hub.terminate()
        for hub in hubs:
            hub.wait(timeout=60)
    texts = [log.read_text(errors="replace") for log in logs]
    assert all(h.returncode == 0 for h in hubs), texts

    db.session.expire_all()
    played = db.session.get(Drill, drill.id)
    assert played.status == DrillStatus.ENDED and played.aar is not None, texts
    audit = db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "drill", AuditEntry.entity_id == drill.id)
    ).all()
    actions = Counter(entry.action for entry in audit)
    assert actions["drill.startex"] == 1
    assert actions["drill.endex"] == 1 and actions["drill.aar_drafted"] == 1
    delivered = Counter(entry.after["number"] for entry in audit if entry.action == "drill.inject_delivered")
    # Nothing goes out twice; the three planned injects go out, and contingency 4 too when the
    # flag of unanswered inject 1 released it before ENDEX.
    assert max(delivered.values()) == 1
    assert {1, 2, 3} <= set(delivered) <= {1, 2, 3, 4}
    incidents = db.session.scalars(select(Incident).where(Incident.exercise.is_(True))).all()
    assert len(incidents) == 1  # inject 2, played once as an exercise incident
    keys = db.session.scalars(
        select(FlowRequest.key).where(FlowRequest.key.like(f"drill:{drill.id}:%"))
    ).all()
    assert len(keys) == len(set(keys))
