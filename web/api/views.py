"""The API's shared part: the member cities and the API document."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.models import City
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
