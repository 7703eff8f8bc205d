"""The JSON API under /api/v1, for partner platforms and the UI's live parts."""

from __future__ import annotations

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

from web.api import exchange, routes  # noqa: E402,F401  (routes attach themselves to the blueprint)
