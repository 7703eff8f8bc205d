"""A city's desk (值班台): what needs action first, then the capabilities' panels.

The page shows the live part once; then the server pushes it again whenever the city's desk
changes (`/dashboard/events`, Server-Sent Events woken by `web.desk.live`), and the page polls
`/dashboard/live` only while it cannot hold a stream. Both answer 401 once the session has ended,
so the page can send the person to log in again and back.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from hub.app import settings_of
from hub.extensions import db
from hub.kernel import acknowledgements, cities, desk
from hub.kernel import auth as auth_service
from web.auth import current_actor
from web.desk import live as desk_live
from web.forms import EmptyForm

bp = Blueprint("dashboard", __name__)


def _live_context(city_id: int) -> dict[str, object]:
    city = cities.by_id(db.session, city_id)
    found = desk.for_city(db.session, city.id, settings_of(current_app))
    return {"city": city, "desk": found, **found.context}


_session_ended = desk_live.session_ended


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show the logged-in person's city dashboard."""
    return render_template("dashboard.html", **_live_context(current_user.city_id))


@bp.get("/dashboard/live")
def live() -> ResponseReturnValue:
    """Return the live part of the dashboard (polled while no stream can be held)."""
    if not current_user.is_authenticated:
        return _session_ended()
    return render_template("_dashboard_live.html", **_live_context(current_user.city_id))


@bp.get("/dashboard/events")
def events() -> ResponseReturnValue:
    """Push the live part of the dashboard whenever the city's desk changes (text/event-stream)."""
    if not current_user.is_authenticated:
        return _session_ended()
    watcher = desk_live.watcher(current_app._get_current_object())  # type: ignore[attr-defined]
    watcher.ensure_started()
    if not watcher.open_stream():
        return Response("busy\n", status=503, mimetype="text/plain", headers={"Retry-After": "30"})
    city_id, session_id = current_user.city_id, current_user.get_id()

    def still_logged_in() -> bool:
        # Log-out elsewhere bumps the session generation; the cookie this stream came with is dead.
        user = auth_service.user_for_session(db.session, session_id)
        if user is None:
            return False
        g._login_user = user  # templates read current_user; give them this transaction's row
        return True

    def render() -> str:
        try:
            if not still_logged_in():
                return desk_live.sse("", "session-ended")
            return desk_live.sse(render_template("_dashboard_live.html", **_live_context(city_id)), "desk")
        finally:
            db.session.remove()  # hold no transaction (nor a SQLite snapshot) while waiting

    def stream() -> Iterator[str]:
        try:
            # Reconnect after 2 s once the stream ends; the first event is the desk as it is now.
            yield "retry: 2000\n\n"
            seen = watcher.generation(city_id)
            first = render()
            yield first
            if first.startswith("event: session-ended"):
                return
            ends = desk_live.monotonic() + desk_live.STREAM_SECONDS
            while not watcher.stopped:
                left = ends - desk_live.monotonic()
                if left <= 0:
                    break
                now = watcher.wait(city_id, seen, min(desk_live.HEARTBEAT_SECONDS, left))
                if now != seen:
                    seen = now
                    sent = render()
                    yield sent
                    if sent.startswith("event: session-ended"):
                        return
                    continue
                try:
                    alive = still_logged_in()
                finally:
                    db.session.remove()
                if not alive:
                    yield desk_live.sse("", "session-ended")
                    return
                yield ": keep-alive\n\n"
            yield desk_live.sse("", "reconnect")
        finally:
            watcher.close_stream()

    return desk_live.event_stream(stream())


@bp.post("/dashboard/acknowledge")
@login_required
def acknowledge() -> ResponseReturnValue:
    """Record that a person of the city saw an urgent item; the desk shows who and when."""
    if EmptyForm().validate_on_submit():
        acknowledgements.acknowledge(db.session, current_actor(), request.form.get("key", ""))
        db.session.commit()
    return redirect(url_for("dashboard.index"))
