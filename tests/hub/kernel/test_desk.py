"""What a city's desk shows first: a level I incident before any deadline, then by deadline."""

from __future__ import annotations

from flask import Flask

from hub.app import settings_of
from hub.extensions import db
from hub.incidents import notifications
from hub.kernel import desk
from hub.kernel.models import City


def test_a_level_i_notice_comes_before_a_report_that_is_due(app: Flask, city, make_incident) -> None:
    xuzhou: City = city("xuzhou")
    level_ii = make_incident("linyi", "II")
    level_i = make_incident("linyi", "I")
    for incident in (level_ii, level_i):
        notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    found = desk.for_city(db.session, xuzhou.id, settings_of(app))
    kinds = [item.template for item in found.urgent]
    # The day's report is due (it has a deadline); the notices have none, yet they come first.
    assert kinds[:2] == ["incidents/_urgent.html", "incidents/_urgent.html"]
    assert [item.subject.incident.level for item in found.urgent[:2]] == [1, 2]
    assert "daily_reports/_urgent.html" in kinds[2:]
