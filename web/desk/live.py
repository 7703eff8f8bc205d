"""Push the desk to open pages: one change detector per process, and the streams it wakes.

The detector (`DeskWatcher`) asks the database every `every` seconds (100 ms) for a probe of the
whole region (`hub.kernel.desk.probe`: a few index lookups, however many desks are open); when it
moved, or `FULL_SECONDS` have passed (what only time changes: a receipt falling late), it asks for
a token per city (`hub.kernel.desk.versions`: a handful of grouped queries) and bumps the
generation of each city whose token changed, waking that city's streams. A stream
(`GET /dashboard/events`) then renders the live part of the desk once and sends it as a
Server-Sent Event. No stream queries anything while nothing changes, but for a check of its
session on each heartbeat.

A stream holds one server thread while it is open, so a process takes at most `slots` of them
(the rest of its threads serve pages), and each ends after `STREAM_SECONDS`: the browser opens a
new one (EventSource reconnects by itself) and, while no slot is free, polls `/dashboard/live`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator

from flask import Flask, Response, current_app, g, stream_with_context
from flask_wtf.csrf import generate_csrf

from hub.extensions import db
from hub.kernel import auth as auth_service
from hub.kernel import desk
from hub.runtime.periodic import Periodic

log = logging.getLogger(__name__)

EVERY_SECONDS = 0.1  # the probe is a few index lookups (about 1 ms): a tenth of a second costs 1 %
FULL_SECONDS = 5.0  # the per-city versions at least this often, for changes time alone makes
STREAM_SECONDS = 240.0  # then the browser reconnects (and the session is checked afresh)
HEARTBEAT_SECONDS = 10.0  # a comment line keeps proxies from closing an idle stream
DEFAULT_SLOTS = 32


class DeskWatcher:
    """The process's change detector: one thread, a generation counter per city."""

    def __init__(self, app: Flask, *, every: float = EVERY_SECONDS, slots: int = DEFAULT_SLOTS) -> None:
        self.app = app
        self.every = every
        self._changed = threading.Condition()
        self._generations: dict[int, int] = {}
        self._versions: dict[int, Hashable] | None = None
        self._probe: Hashable | None = None
        self._next_full = 0.0
        self.full_checks = 0
        self._start_lock = threading.Lock()
        self._periodic: Periodic | None = None
        self._stopped = False
        self._streams = 0
        self.slots = slots
        self.ticks = 0
        self.wakes = 0
        self.renders = SharedRenders()
        self.panels = PanelRenders()

    # The detector -------------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the detector thread, once (the first stream does it, or the runner)."""
        with self._start_lock:
            if self._periodic is None and not self._stopped:
                self._periodic = Periodic("hub-desk-watch", self.every, self.tick).start()

    def stop(self, *, wait: float = 0.0) -> None:
        """Stop detecting and end every open stream, waiting up to `wait` seconds for them to end.

        A server closed under a stream still sending its last event fails that write ("Bad file
        descriptor", logged as an error): whoever closes the server next waits here first.
        """
        with self._start_lock:
            self._stopped = True
            periodic, self._periodic = self._periodic, None
        if periodic is not None:
            periodic.stop()
        with self._changed:
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._streams == 0, timeout=wait)

    @property
    def stopped(self) -> bool:
        """Return whether `stop` was called."""
        return self._stopped

    def tick(self) -> list[int]:
        """Compare every city's desk version with the last one; wake the cities that changed."""
        with self.app.app_context():
            try:
                probe = desk.probe(db.session)
                if probe == self._probe and time.monotonic() < self._next_full:
                    self.ticks += 1
                    return []
                found = desk.versions(db.session)
            finally:
                db.session.remove()
        self._probe, self._next_full = probe, time.monotonic() + FULL_SECONDS
        self.ticks += 1
        self.full_checks += 1
        previous, self._versions = self._versions, found
        if previous is None:
            return []
        changed = [city_id for city_id, version in found.items() if previous.get(city_id) != version]
        if changed:
            with self._changed:
                for city_id in changed:
                    self._generations[city_id] = self._generations.get(city_id, 0) + 1
                self.wakes += 1
                self._changed.notify_all()
        return changed

    def generation(self, city_id: int) -> int:
        """Return how many changes of the city's desk this process has seen."""
        with self._changed:
            return self._generations.get(city_id, 0)

    def wait(self, city_id: int, seen: int, timeout: float) -> int:
        """Wait until the city's desk changes after generation `seen`, or `timeout` passes."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._stopped or self._generations.get(city_id, 0) != seen, timeout=timeout
            )
            return self._generations.get(city_id, 0)

    # Stream slots -------------------------------------------------------------------------------

    def open_stream(self) -> bool:
        """Take a stream slot; False when all are taken (the page polls meanwhile)."""
        with self._changed:
            if self._stopped or self._streams >= self.slots:
                return False
            self._streams += 1
            return True

    def close_stream(self) -> None:
        """Give a stream slot back."""
        with self._changed:
            self._streams -= 1
            self._changed.notify_all()  # `stop` may be waiting for the last one

    @property
    def streams(self) -> int:
        """Return how many streams are open."""
        return self._streams


class SharedRenders:
    """The last render of each shared stream key, so that the streams one change wakes render once.

    A city's desk is the same for everyone of the city with the same role and language, but for
    the session's CSRF token in its forms: the first stream of a key renders it, with its token
    replaced by a placeholder, and the others put their own token back. A render is kept for
    `MAX_AGE` seconds at most, since what time alone changes (countdowns) must not grow old.
    """

    MAX_AGE = 2.0
    PLACEHOLDER = "\x00csrf-token\x00"  # no template writes a NUL character

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One render at a time: the process has one interpreter lock, so renders side by side
        # finish no sooner, all of them late together, and page loads meanwhile share the lock
        # with every one of them. One at a time, the first desks are served first and a page
        # waits behind one render at most.
        self._rendering = threading.Lock()
        self._renders: dict[tuple[Hashable, ...], tuple[float, str]] = {}
        self._building: dict[tuple[Hashable, ...], threading.Lock] = {}
        self.made = 0

    def get(self, key: tuple[Hashable, ...], render: Callable[[], str], token: str) -> str:
        """Return the render for `key` with `token` in its forms, rendering only if none is fresh.

        The key's last part is the generation: a newer one replaces the renders of the older.
        """
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:  # the others of the key wait for the one rendering, then take its render
            with self._lock:
                found = self._renders.get(key)
            if found is None or time.monotonic() - found[0] > self.MAX_AGE:
                with self._rendering:
                    found = (time.monotonic(), render().replace(token, self.PLACEHOLDER))
                with self._lock:
                    self._renders = {k: v for k, v in self._renders.items() if k[:-1] != key[:-1]}
                    self._renders[key] = found
                    self._building = {
                        k: v for k, v in self._building.items() if k[:-1] != key[:-1] or k == key
                    }
                    self.made += 1
        return found[1].replace(self.PLACEHOLDER, token)


class PanelRenders:
    """The last render of each capability's desk panels per city, role and language, by token.

    A capability that gives its panels a token (`desk_panel_token`) has them rendered once per
    token: a change elsewhere on the desk (a bulletin owed, a receipt signed) re-renders the
    urgent list, not the incidents panel. Kept with its CSRF token replaced, as `SharedRenders`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._renders: dict[tuple[Hashable, ...], tuple[Hashable, str]] = {}
        self.made = 0

    def get(self, where: tuple[Hashable, ...], token: Hashable, csrf_token: str) -> str | None:
        """Return the render kept for `where` at `token` with `csrf_token` in its forms, if any."""
        with self._lock:
            found = self._renders.get(where)
        if found is None or found[0] != token:
            return None
        return found[1].replace(SharedRenders.PLACEHOLDER, csrf_token)

    def put(self, where: tuple[Hashable, ...], token: Hashable, html: str, csrf_token: str) -> None:
        """Keep `html`, rendered at `token`, for `where` (replacing the render of an older token)."""
        with self._lock:
            self._renders[where] = (token, html.replace(csrf_token, SharedRenders.PLACEHOLDER))
            self.made += 1


def watcher(app: Flask) -> DeskWatcher:
    """Return the app's desk watcher, creating it on first use (the thread starts lazily)."""
    found: DeskWatcher | None = app.extensions.get("desk_watcher")
    if found is None:
        with _create_lock:
            found = app.extensions.get("desk_watcher")
            if found is None:
                found = app.extensions["desk_watcher"] = DeskWatcher(app)
    return found


def stream_slots_for(threads: int) -> int:
    """Leave a quarter of the server's threads (at least 4) to pages; the rest may stream."""
    return max(1, threads - max(4, threads // 4))


def sse(data: str, event: str | None = None) -> str:
    """Format one Server-Sent Event; every line of `data` becomes a data: line."""
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def session_ended() -> Response:
    """Answer a live part or stream asked for after the session ended (the page logs in again)."""
    return Response(
        "session ended\n", status=401, mimetype="text/plain", headers={"Cache-Control": "no-store"}
    )


def session_stands(session_id: str) -> bool:
    """Return whether a stream's log-in session still stands; if so, templates see its user.

    Log-out elsewhere bumps the session generation: the cookie the stream came with is dead.
    """
    user = auth_service.user_for_session(db.session, session_id)
    if user is None:
        return False
    g._login_user = user  # templates read current_user; give them this transaction's row
    return True


def event_stream(events: Iterator[str]) -> Response:
    """Answer a stream of Server-Sent Events, uncached and unbuffered by proxies."""
    return Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def stream_response(
    city_id: int,
    session_id: str,
    render: Callable[[], str],
    event: str,
    *,
    only_changes: bool = False,
    shared_as: tuple[Hashable, ...] | None = None,
) -> Response:
    """Stream `render()` as `event` now and whenever the city's desk changes (text/event-stream).

    The desk and the pages that follow what a city's desk follows (a mutual-aid request) share
    this: the process's one change detector wakes the stream, which renders once per change in a
    fresh transaction. With `only_changes`, a render equal to the last one sent is not sent again.
    With `shared_as` (what the render depends on besides the city's desk and the CSRF token: the
    role, the language), the streams of the city with the same key share one render per change.
    A stream ends with `session-ended` when the session ends elsewhere, and with `reconnect` after
    `STREAM_SECONDS`; while no stream slot is free it answers 503 and the page polls.
    """
    stream_watcher = watcher(current_app._get_current_object())  # type: ignore[attr-defined]
    stream_watcher.ensure_started()
    if not stream_watcher.open_stream():
        return Response("busy\n", status=503, mimetype="text/plain", headers={"Retry-After": "30"})

    def rendered(generation: int) -> str:
        try:
            if not session_stands(session_id):
                return sse("", "session-ended")
            if shared_as is None:
                return sse(render(), event)
            key = (city_id, *shared_as, generation)
            return sse(stream_watcher.renders.get(key, render, generate_csrf()), event)
        finally:
            db.session.remove()  # hold no transaction (nor a SQLite snapshot) while waiting

    def stream() -> Iterator[str]:
        try:
            # Reconnect after 2 s once the stream ends; the first event is the page as it is now.
            yield "retry: 2000\n\n"
            seen = stream_watcher.generation(city_id)
            first = last = rendered(seen)
            yield first
            if first.startswith("event: session-ended"):
                return
            ends = monotonic() + STREAM_SECONDS
            while not stream_watcher.stopped:
                left = ends - monotonic()
                if left <= 0:
                    break
                now = stream_watcher.wait(city_id, seen, min(HEARTBEAT_SECONDS, left))
                if now != seen:
                    seen = now
                    sent = rendered(seen)
                    if sent.startswith("event: session-ended"):
                        yield sent
                        return
                    if not only_changes or sent != last:
                        last = sent
                        yield sent
                    continue
                try:
                    alive = session_stands(session_id)
                finally:
                    db.session.remove()
                if not alive:
                    yield sse("", "session-ended")
                    return
                yield ": keep-alive\n\n"
            yield sse("", "reconnect")
        finally:
            stream_watcher.close_stream()

    return event_stream(stream())


def monotonic() -> float:
    """Return the clock the streams time themselves by."""
    return time.monotonic()


_create_lock = threading.Lock()
