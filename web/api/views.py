"""The API's shared part: the member cities and the API document."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.models import City
from hub.runtime.status import Component
from web import status as hub_status
from web.api.openapi import openapi_document
from web.auth import api_auth

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _city_json(city: City) -> dict[str, object]:
    return {
        "slug": city.slug,
        "division_code": city.division_code,
        "name_zh": city.name_zh,
        "name_en": city.name_en,
        "province_zh": city.province_zh,
        "province_en": city.province_en,
        "centre": [city.longitude, city.latitude],
        "neighbours": [n.slug for n in city.neighbours],
    }


@bp.get("/cities")
@api_auth
def list_cities() -> ResponseReturnValue:
    """List the member cities with their neighbours."""
    return jsonify(items=[_city_json(c) for c in city_service.all_cities(db.session)])


@bp.get("/cities/<slug>")
@api_auth
def get_city(slug: str) -> ResponseReturnValue:
    """Return one member city."""
    return jsonify(_city_json(city_service.by_slug(db.session, slug)))


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """Serve the API's OpenAPI document."""
    return jsonify(openapi_document())


def _component_json(component: Component) -> dict[str, object]:
    return {
        "name": component.name,
        "kind": component.kind,
        "up": component.up,
        "detail": component.detail,
        "checked_at": component.checked_at.isoformat() if component.checked_at else None,
        "last_seen": component.last_seen.isoformat() if component.last_seen else None,
    }


@bp.get("/status")
@api_auth
def status() -> ResponseReturnValue:
    """Each part of the running hub, for monitoring; `ok` when every part is up."""
    parts = hub_status.components()
    return jsonify(ok=all(p.up for p in parts), components=[_component_json(p) for p in parts])


@bp.get("/ready")
def ready() -> ResponseReturnValue:
    """Readiness for a load balancer: 200 when the database and the broker link answer, else 503."""
    parts = {p.name: p for p in hub_status.components()}
    needed = [parts[name] for name in ("database", "mqtt-link") if name in parts]
    ok = all(p.up for p in needed)
    return jsonify(ok=ok, components=[_component_json(p) for p in needed]), 200 if ok else 503
