"""Vehicles (移动指挥车) in the UI: the live list and map, registration, commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import TypeAdapter, ValidationError

from contracts.mqtt import Action
from hub.app import settings_of
from hub.extensions import db
from hub.fleet import commands as command_service
from hub.fleet import services as fleet_service
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from web.auth import current_actor
from web.desk import live as desk_live
from web.errors import flash_refusal
from web.fleet.forms import CommandForm, VehicleForm, command_kind_choices, vehicle_state_choices
from web.i18n import city_choices
from web.kick import kick_broker, kick_mqtt

bp = Blueprint("fleet", __name__, template_folder="templates")
ACTION = TypeAdapter(Action)
# A vehicle's page follows its position this often; going on or off the air wakes it at once.
PUSH_POSITION_SECONDS = 2.0


def _link_up() -> bool:
    """Return whether the hub's MQTT link is connected (true when this app runs without one).

    The online flags are what the broker last told the hub: while the link is down nobody can
    know whether they still hold, so the pages show them as unknown.
    """
    link = current_app.extensions.get("mqtt_link")
    return link is None or bool(link.connected)


def _live_context() -> dict[str, object]:
    vehicles = fleet_service.vehicles(db.session)
    link_up = _link_up()
    return {
        "vehicles": vehicles,
        "states": dict(vehicle_state_choices()),
        "online_count": sum(1 for v in vehicles if v.online) if link_up else None,
        "link_up": link_up,
    }


def _vehicle_form() -> VehicleForm:
    form = VehicleForm()
    actor = current_actor()
    cities = city_service.all_cities(db.session)
    form.city.choices = city_choices([c for c in cities if actor.is_admin or c.id == actor.city_id])
    return form


@bp.get("/vehicles")
@login_required
def index() -> ResponseReturnValue:
    """Show every vehicle on the map and in a table, refreshed without a reload."""
    actor = current_actor()
    return render_template(
        "fleet/index.html",
        form=_vehicle_form(),
        can_register=actor.is_admin or actor.can_write_incidents,
        **_live_context(),
    )


@bp.post("/vehicles")
@login_required
def register() -> ResponseReturnValue:
    """Register a vehicle and show its broker credentials once."""
    form = _vehicle_form()
    if not form.validate_on_submit():
        flash(_("请填写车辆编号。"), "error")
        return redirect(url_for("fleet.index"))
    try:
        vehicle, password = fleet_service.register_vehicle(
            db.session,
            current_actor(),
            city_service.by_slug(db.session, form.city.data or ""),
            (form.code.data or "").strip(),
            form.name.data or "",
        )
    except ServiceError as exc:
        flash_refusal(exc)
        return redirect(url_for("fleet.index"))
    db.session.commit()
    kick_broker(current_app)
    flash(
        _(
            "已登记 %(name)s。车载终端接入账号：%(username)s，密码：%(password)s（只显示这一次，请立即配置到车辆）。",  # noqa: E501  (one translatable sentence)
            name=vehicle.name,
            username=vehicle.mqtt_username,
            password=password,
        ),
        "success",
    )
    return redirect(url_for("fleet.detail", vehicle_id=vehicle.id))


@bp.get("/vehicles/live")
@login_required
def live() -> ResponseReturnValue:
    """Return the live part of the vehicles page."""
    return render_template("fleet/_live.html", **_live_context())


def _command_form() -> CommandForm:
    form = CommandForm()
    form.kind.choices = command_kind_choices()
    form.status.choices = vehicle_state_choices()
    return form


def _detail_context(vehicle_id: int) -> dict[str, Any]:
    return {
        "vehicle": fleet_service.vehicle(db.session, vehicle_id),
        "commands": command_service.for_vehicle(db.session, vehicle_id),
        "states": dict(vehicle_state_choices()),
        # Warnings reach vehicles as notices, which the hub sends, never the form.
        "kinds": {**dict(command_kind_choices()), "notice": _("预警提示")},
        "link_up": _link_up(),
    }


@bp.get("/vehicles/<int:vehicle_id>")
@login_required
def detail(vehicle_id: int) -> ResponseReturnValue:
    """Show one vehicle, its commands and (for its own city) the command form."""
    context = _detail_context(vehicle_id)
    actor = current_actor()
    can_command = actor.can_write_incidents and actor.city_id == context["vehicle"].city_id
    return render_template("fleet/detail.html", form=_command_form(), can_command=can_command, **context)


def _vehicle_live_context(vehicle_id: int) -> dict[str, Any]:
    return {
        "vehicle": fleet_service.vehicle(db.session, vehicle_id),
        "states": dict(vehicle_state_choices()),
        "link_up": _link_up(),
    }


@bp.get("/vehicles/<int:vehicle_id>/live")
def vehicle_live(vehicle_id: int) -> ResponseReturnValue:
    """Return the live part of a vehicle's page (polled while no stream can be held)."""
    if not current_user.is_authenticated:
        return desk_live.session_ended()
    return render_template("fleet/_vehicle_live.html", **_vehicle_live_context(vehicle_id))


@bp.get("/vehicles/<int:vehicle_id>/events")
def vehicle_events(vehicle_id: int) -> ResponseReturnValue:
    """Push the live part of a vehicle's page whenever it changes (text/event-stream).

    The desk's change detector wakes the stream at once when one of the city's vehicles goes on
    or off the air; positions and status, which move every second, are looked at every
    `PUSH_POSITION_SECONDS`. An event goes out only when the rendered part changed.
    """
    if not current_user.is_authenticated:
        return desk_live.session_ended()
    vehicle = fleet_service.vehicle(db.session, vehicle_id)
    watcher = desk_live.watcher(current_app._get_current_object())  # type: ignore[attr-defined]
    watcher.ensure_started()
    if not watcher.open_stream():
        return Response("busy\n", status=503, mimetype="text/plain", headers={"Retry-After": "30"})
    city_id, session_id = vehicle.city_id, current_user.get_id()
    db.session.remove()

    def render() -> str | None:
        """Return the part as it is now, or None when the session has ended."""
        try:
            if not desk_live.session_stands(session_id):
                return None
            return render_template("fleet/_vehicle_live.html", **_vehicle_live_context(vehicle_id))
        finally:
            db.session.remove()  # no transaction (nor SQLite snapshot) is held between renders

    def stream() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            seen = watcher.generation(city_id)
            sent: str | None = None
            ends = desk_live.monotonic() + desk_live.STREAM_SECONDS
            quiet_since = desk_live.monotonic()
            while not watcher.stopped and desk_live.monotonic() < ends:
                html = render()
                if html is None:
                    yield desk_live.sse("", "session-ended")
                    return
                if html != sent:
                    sent, quiet_since = html, desk_live.monotonic()
                    yield desk_live.sse(html, "update")
                elif desk_live.monotonic() - quiet_since >= desk_live.HEARTBEAT_SECONDS:
                    quiet_since = desk_live.monotonic()
                    yield ": keep-alive\n\n"
                seen = watcher.wait(city_id, seen, PUSH_POSITION_SECONDS)
            yield desk_live.sse("", "reconnect")
        finally:
            watcher.close_stream()

    return desk_live.event_stream(stream())


@bp.get("/vehicles/<int:vehicle_id>/commands")
@login_required
def commands_live(vehicle_id: int) -> ResponseReturnValue:
    """Return the live list of a vehicle's commands."""
    return render_template("fleet/_commands.html", **_detail_context(vehicle_id))


def _action_from(form: CommandForm) -> Action:
    data: dict[str, object] = {"kind": form.kind.data}
    if form.kind.data == "goto":
        data.update(
            lat=float(form.latitude.data) if form.latitude.data is not None else None,
            lon=float(form.longitude.data) if form.longitude.data is not None else None,
            note=form.note.data or "",
        )
    elif form.kind.data == "set_status":
        data["status"] = form.status.data
    elif form.kind.data == "open_video" and form.url.data:
        data["url"] = form.url.data
    return ACTION.validate_python(data)


@bp.post("/vehicles/<int:vehicle_id>/commands")
@login_required
def send_command(vehicle_id: int) -> ResponseReturnValue:
    """Send a command to a vehicle of the person's own city."""
    form = _command_form()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            flash(f"{getattr(form, field).label.text}: {'; '.join(errors)}", "error")
        return redirect(url_for("fleet.detail", vehicle_id=vehicle_id))
    try:
        action = _action_from(form)
    except ValidationError as exc:
        flash(
            _(
                "指令参数有误：%(problems)s",
                problems="; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
                    for e in exc.errors()
                ),
            ),
            "error",
        )
        return redirect(url_for("fleet.detail", vehicle_id=vehicle_id))
    try:
        command_service.send_command(
            db.session,
            current_actor(),
            vehicle_id,
            action,
            root=settings_of(current_app).mqtt_root,
            ttl=timedelta(minutes=form.ttl_minutes.data or 10),
        )
    except ServiceError as exc:
        flash_refusal(exc)
        return redirect(url_for("fleet.detail", vehicle_id=vehicle_id))
    db.session.commit()
    kick_mqtt(current_app)
    flash(_("指令已下达，等待车辆回执。"), "success")
    return redirect(url_for("fleet.detail", vehicle_id=vehicle_id))
