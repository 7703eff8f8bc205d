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
from hub.drills import services as drill_service
from hub.extensions import db
from hub.fleet import services as fleet_service
from hub.incidents import services as incident_service
from hub.kernel import cities as city_service
from hub.kernel import geography
from hub.kernel.models import City
from hub.kernel.types import utcnow
from hub.mutual_aid import services as aid_service
from hub.partners import services as partner_service
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
    open_incidents = incident_service.newest_incidents(
        db.session, incident_service.IncidentFilter(open_only=True), incident_service.MAX_PER_PAGE
    )
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
    return {
        "incidents": incidents,
        "vehicles": vehicles,
        "aid_resources": _aid_resources(cities),
        "aid_requests": _aid_requests(cities),
        "injects": _injects(cities, own),
        "platform_incidents": _platform_incidents(cities),
        "at": now.isoformat(),
    }


def _aid_resources(cities: dict[int, City]) -> list[dict[str, object]]:
    """The mutual-aid registry's entries in service, where they are kept."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "type": r.type_code,
            "available": str(r.available),
            "unit": r.unit,
            "city": cities[r.owner_city_id].slug,
            "city_name": cities[r.owner_city_id].name_zh,
            "lat": r.lat,
            "lon": r.lon,
            "url": url_for("mutual_aid.registry"),
        }
        for r in aid_service.entries_on_map(db.session)
    ]


def _aid_requests(cities: dict[int, City]) -> list[dict[str, object]]:
    """Open requests for help, at the place their first line reports to."""
    return [
        {
            "id": str(r.public_id),
            "title": r.title,
            "city": cities[r.requesting_city_id].slug,
            "city_name": cities[r.requesting_city_id].name_zh,
            "lat": r.lines[0].report_to_lat,
            "lon": r.lines[0].report_to_lon,
            "url": url_for("mutual_aid.request_detail", public_id=r.public_id),
        }
        for r in aid_service.open_requests_on_map(db.session)
        if r.lines
    ]


def _platform_incidents(cities: dict[int, City]) -> list[dict[str, object]]:
    """What the cities' own platforms list as open incidents, at their city's centre: a platform
    gives a place as text only."""
    found = []
    for record in partner_service.open_platform_incidents(db.session):
        city = cities[record.city_id]
        data = record.data
        found.append(
            {
                "id": record.external_id,
                "title": str(data.get("title", "")),
                "level": str(data.get("level", "")),
                "location": str(data.get("location", "")),
                "city": city.slug,
                "city_name": city.name_zh,
                "lat": city.latitude,
                "lon": city.longitude,
                "url": url_for("partners.partner_records", slug=city.slug, feed="incidents"),
            }
        )
    return found


def _injects(cities: dict[int, City], own: int | None) -> list[dict[str, object]]:
    """Injects played in running drills, at their target city's centre: for that city and the controller."""
    return [
        {
            "id": i.id,
            "number": i.number,
            "drill": i.drill.name,
            "message": i.message[:120],
            "city": cities[i.city_id].slug,
            "city_name": cities[i.city_id].name_zh,
            "lat": cities[i.city_id].latitude,
            "lon": cities[i.city_id].longitude,
            "url": url_for("drills.drill_detail", drill_id=i.drill_id),
        }
        for i in drill_service.injects_in_play(db.session)
        if own in (i.city_id, i.drill.controlling_city_id)
    ]


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
