"""Mutual aid in the UI: a request and where each of its lines stands."""

from __future__ import annotations

import uuid

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required

from hub.extensions import db
from hub.mutual_aid import services as aid

bp = Blueprint("mutual_aid", __name__, template_folder="templates")


@bp.get("/aid/requests/<uuid:public_id>")
@login_required
def request_detail(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a request, its lines with their progress, the cities asked and every offer."""
    request = aid.get_request_by_public_id(db.session, public_id)
    return render_template(
        "mutual_aid/request.html",
        aid_request=request,
        progress=aid.progress(db.session, request),
        asks=aid.asks(db.session, request.id),
        commitments=aid.commitments_of(db.session, request.id),
    )
