"""A live hub (web app, flow dispatcher, Prefect harness) and a headless Chromium to drive it."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--lang=zh-CN",
]
# With the chromium-l10n package, date and time inputs then read 2026/11/29 07:55, as in a duty room.
CHROMIUM_ENV = {"LANG": "zh_CN.UTF-8", "LANGUAGE": "zh_CN:zh"}
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def live_hub(app: Flask, prefect_harness: None) -> Iterator[str]:
    """Serve the app on a free loopback port with a running flow dispatcher; yield its base URL."""
    from waitress.server import create_server

    from flows.context import use_app
    from flows.launcher import FlowDispatcher, LocalLauncher

    use_app(app)
    dispatcher = FlowDispatcher(LocalLauncher(workers=2), poll_seconds=0.5)
    dispatcher.start()
    app.extensions["flow_kicker"] = dispatcher
    from web.desk import live as desk_live

    # Each open desk holds a thread for its live stream, as under `hub run`.
    threads = 8
    watcher = desk_live.watcher(app)
    watcher.slots = desk_live.stream_slots_for(threads)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    port = server.effective_port  # type: ignore[union-attr]

    def serve() -> None:
        # waitress raises from its select loop once close() has closed the sockets.
        with contextlib.suppress(OSError, ValueError):
            server.run()

    thread = threading.Thread(target=serve, name="e2e-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        watcher.stop(wait=5)  # ends the desks' streams first, as `hub run` does
        server.close()
        thread.join(timeout=5)
        dispatcher.stop()
        app.extensions["flow_kicker"] = None
        use_app(None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium (the Debian package) for the whole session."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # What the page waits for is a push or a form post; under a loaded CI machine either may take
    # more than Playwright's 5 s. A wait that holds returns at once; only a failure waits longer.
    expect.set_options(timeout=15_000)
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env={**os.environ, **CHROMIUM_ENV}
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Open pages (1366 px wide unless told), each in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []

    def open_page(width: int = 1366) -> Any:
        context = browser.new_context(
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": width, "height": 900},
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    """A page in a fresh browser context."""
    return new_page()


@pytest.fixture
def login(live_hub: str) -> Callable[..., None]:
    """Log a page in through the real form."""

    def do_login(page: Any, username: str, password: str = PASSWORD) -> None:
        page.goto(f"{live_hub}/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_hub}/")

    return do_login


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Save a full-page screenshot: to docs/screenshots with HUB_SCREENSHOTS=1, else tmp_path."""
    target = SCREENSHOT_DIR if os.environ.get("HUB_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = target / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
