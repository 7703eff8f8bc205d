"""The region's map: boundaries, the layers drawn on them, and which city a picked point is in.

The browser draws with Leaflet (web/static/vendor/leaflet, built by `make vendor`) from
web/static/map.js; every request stays on the hub: no tiles unless `HUB_MAP_TILE_URL` names a
tile server of the site's own.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from hub.app import settings_of
from hub.extensions import db
from hub.fleet import services as fleet_service
from hub.incidents import services as incident_service
from hub.kernel import cities as city_service
from hub.kernel import geography
from hub.kernel.types import utcnow
from web.api.spec import operation
from web.auth import api_auth

bp = Blueprint("map", __name__)
api_bp = Blueprint("map_api", __name__, url_prefix="/api/v1")

# A position older than this is drawn grey: the vehicle may be somewhere else by now.
STALE_AFTER = timedelta(minutes=2)
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


@api_bp.get("/map/boundaries.geojson")
@api_auth
@operation(
    tags=("map",),
    xml_answer=("200", "application/geo+json"),
    HTTP_200=(None, "GeoJSON FeatureCollection of the region's prefectures"),
)
def boundaries() -> ResponseReturnValue:
    """Return the member cities' and their neighbours' boundaries (GeoJSON, longitude first)."""
    response = Response(geography.boundaries_text(), mimetype="application/geo+json")
    response.cache_control.private = True
    response.cache_control.max_age = 3600
    return response


def tile_url() -> str | None:
    """Return the site's own tile server URL template, if it has one."""
    return settings_of(current_app).map_tile_url


@bp.get("/map/layers.json")
@login_required
def layers() -> ResponseReturnValue:
    """Return what the map draws for the logged-in city: open incidents and the vehicles."""
    cities = {c.id: c for c in city_service.all_cities(db.session)}
    own = current_user.city_id
    open_incidents = incident_service.list_incidents(
        db.session, incident_service.IncidentFilter(open_only=True), per_page=incident_service.MAX_PER_PAGE
    ).items
    incidents = []
    for incident in open_incidents:
        city = cities[incident.reporting_city_id]
        placed = incident.latitude is not None and incident.longitude is not None
        incidents.append(
            {
                "id": incident.id,
                "title": incident.title,
                "level": ROMAN[incident.level],
                "exercise": incident.exercise,
                "city": city.slug,
                "city_name": city.name_zh,
                # Without a picked place, the incident stands at its city's centre.
                "lat": incident.latitude if placed else city.latitude,
                "lon": incident.longitude if placed else city.longitude,
                "placed": placed,
                "own": incident.reporting_city_id == own
                or any(c.id == own for c in incident.affected_cities),
                "url": url_for("incidents.detail", incident_id=incident.id),
            }
        )
    now = utcnow()
    vehicles = [
        {
            "id": v.id,
            "code": v.code,
            "name": v.name,
            "city": v.city.slug,
            "city_name": v.city.name_zh,
            "lat": v.latitude,
            "lon": v.longitude,
            "heading": v.heading,
            "speed_kmh": v.speed_kmh,
            "online": v.online,
            "stale": v.position_at is None or now - v.position_at > STALE_AFTER,
            "position_at": v.position_at.isoformat() if v.position_at else None,
            "own": v.city_id == own,
            "url": url_for("fleet.detail", vehicle_id=v.id),
        }
        for v in fleet_service.vehicles(db.session)
        if v.latitude is not None and v.longitude is not None
    ]
    return {"incidents": incidents, "vehicles": vehicles, "at": now.isoformat()}


@bp.get("/map/city-at.json")
@login_required
def city_at() -> ResponseReturnValue:
    """Return the member city a picked point lies in (null outside the ten)."""
    try:
        latitude = float(request.args["lat"])
        longitude = float(request.args["lon"])
    except (KeyError, ValueError):
        return {"error": _("请给出经纬度。")}, 400
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return {"error": _("请给出经纬度。")}, 400
    slug = geography.member_city_at(longitude, latitude)
    city = city_service.by_slug(db.session, slug) if slug else None
    return {"city": slug, "name": city.name_zh if city else None}
