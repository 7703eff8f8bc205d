"""PostgreSQL restarted under a running hub: pages and the API answer 503 with a clear message while
it is away, the flow dispatcher keeps going, and everything works again when it is back, with no
restart of the hub. The test runs its own PostgreSQL server, so that it can stop it."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask_migrate import upgrade
from sqlalchemy import select

from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from hub.app import MIGRATIONS_DIR
from hub.config import Settings
from hub.extensions import db
from hub.kernel import flow_requests
from hub.kernel.models import FlowRequest, FlowRequestStatus
from hub.kernel.seed import DEMO_PASSWORD, seed_cities, seed_demo_users
from hub.runtime import free_port
from web.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


class Postgres:
    """A PostgreSQL server of the test's own, in a folder the `postgres` user owns."""

    def __init__(self, folder: Path) -> None:
        assert PG_BIN is not None, (
            "PostgreSQL's server programs are not installed (apt-get install postgresql)"
        )
        self.data = folder / "data"
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        for owned in (folder.parent, folder):
            shutil.chown(owned, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _as_postgres(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:  # initdb and the server refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        # With a log file, the server keeps none of pg_ctl's output pipes open.
        log = str(self.data.parent / "server.log")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        self._as_postgres("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    # Not under pytest's own temporary folder: only root may enter that, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="hub-pg-"))
    try:
        server = Postgres(folder / "cluster")
        server.start()
        try:
            yield server
        finally:
            try:
                server.stop()
            except subprocess.CalledProcessError:
                logging.getLogger(__name__).info("the test's PostgreSQL server was already stopped")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _wait(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_hub_rides_out_a_postgresql_restart_without_restarting(
    postgres: Postgres, tmp_path: Path
) -> None:
    postgres.create_database("hub")
    settings = Settings(
        secret_key="restart-" + os.urandom(8).hex(),
        encryption_key=Fernet.generate_key().decode(),
        instance_path=tmp_path / "instance",
        database_url=postgres.url("hub"),
    )
    app = create_app(settings)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        seed_cities(db.session)
        seed_demo_users(db.session)
        db.session.commit()
    use_app(app)
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start(recover=False)
    client = app.test_client()
    try:
        client.post("/login", data={"username": "linyi-coord", "password": DEMO_PASSWORD})
        assert client.get("/").status_code == 200

        postgres.stop()
        page = client.get("/")
        assert page.status_code == 503 and page.headers["Retry-After"]
        assert "数据库暂时无法连接" in page.get_data(as_text=True)
        api = client.get("/api/v1/status", headers={"Accept": "application/json"})
        assert api.status_code in (401, 503)  # no token: refused before or at the database
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503 and ready.get_json()["ok"] is False
        time.sleep(1)  # the dispatcher's rounds fail meanwhile, and it keeps going

        postgres.start()
        _wait(lambda: client.get("/").status_code == 200, "the desk to answer again")
        with app.app_context():
            request = flow_requests.enqueue(db.session, "prune-retention", "after-the-restart", {})
            db.session.commit()
            request_id = request.id
        dispatcher.wake()

        def done() -> bool:
            with app.app_context():
                status = db.session.scalar(select(FlowRequest.status).where(FlowRequest.id == request_id))
                db.session.remove()
            return status == FlowRequestStatus.DONE

        _wait(done, "a flow requested after the restart to run")
    finally:
        dispatcher.stop()
        use_app(None)
        with app.app_context():
            db.engine.dispose()
