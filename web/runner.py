"""Run the whole hub in one process: database, broker, Prefect, flows, MQTT bridge and web server.

Whatever is not configured is started here on embedded defaults (SQLite, a local Mosquitto
with password and ACL files written from the registry, a local Prefect server), and stopped
again, in reverse order, when the hub stops.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from flask import Flask
from sqlalchemy import text

from hub.app import MIGRATIONS_DIR, checkpoint_wal, create_core_app, settings_of
from hub.config import Settings
from hub.consultations.seed import seed_demo_conference, seed_demo_flood
from hub.drills.seed import seed_demo_drills
from hub.extensions import db
from hub.fleet.seed import PeerCredentials, seed_demo_fleet
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.broker_auth import HubCredentials, mosquitto_hash, sync_broker_files, write_broker_files
from hub.kernel.seed import load_city_data, seed_cities, seed_demo_users
from hub.mutual_aid.demo import seed_flood_depots
from hub.mutual_aid.seed import seed_demo_registry
from hub.partners import services as partners
from hub.runtime import (
    ManagedMosquitto,
    ManagedPrefectServer,
    ManagedProcess,
    MosquittoConfig,
    Periodic,
    Supervised,
    Supervisor,
    free_port,
)
from hub.runtime.instance_lock import InstanceLock
from hub.runtime.status import Check, StatusBoard
from web.status import disk_check

if TYPE_CHECKING:
    from connectors.mqtt_link import MqttLink
    from flows.launcher import FlowDispatcher
    from flows.scheduler import Scheduler

log = logging.getLogger(__name__)
HUB_MQTT_USERNAME = "hub"


class BrokerSync:
    """Keep the managed broker's password and ACL files in step with the registry.

    A registration in the web UI wakes it at once; a registration by another process (`hub fleet
    add-vehicle`, say) is found by looking at the registry every `poll` seconds. Either way the
    files are rewritten only when they would change, and only then is the broker told to reload.
    """

    def __init__(
        self, app: Flask, broker: ManagedMosquitto, directory: Path, hub: HubCredentials, *, poll: float = 5.0
    ) -> None:
        self.app, self.broker, self.directory, self.hub = app, broker, directory, hub
        self.reloads = 0
        self._lock = threading.Lock()
        self._watch = Periodic("hub-broker-sync", poll, self.wake)

    def start(self) -> BrokerSync:
        """Look at the registry every `poll` seconds from now on."""
        self._watch.start()
        return self

    def stop(self) -> None:
        """Stop looking."""
        self._watch.stop()

    def wake(self) -> None:
        """Apply a registry change now: new files, then SIGHUP so the broker reads them."""
        with self._lock, self.app.app_context():
            try:
                root = settings_of(self.app).mqtt_root
                changed = sync_broker_files(db.session, self.directory, self.hub, root)
            finally:
                db.session.remove()
            if changed:
                self.broker.reload()
                self.reloads += 1
                log.info("broker password and ACL files rewritten from the registry; broker reloaded")


def wal_checkpointer(app: Flask, every: float = 1.0) -> Periodic:
    """Return a thread that checkpoints a SQLite database off the writers' path (see hub.app)."""

    def checkpoint() -> None:
        with app.app_context():
            checkpoint_wal(db.engine)

    return Periodic("hub-wal-checkpoint", every, checkpoint)


def _hub_mqtt_password(instance: Path) -> str:
    """Return the hub's own broker password, made once and kept in the instance folder."""
    path = instance / "mosquitto" / "hub-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


class HubRunner:
    """Start and stop every part of a one-process hub."""

    def __init__(self, settings: Settings, *, demo: bool = False, simulate: bool | None = None) -> None:
        self.settings = settings
        self.demo = demo
        self.simulate = demo if simulate is None else simulate
        self.stack = ExitStack()
        self.app: Flask | None = None
        self.peers: list[PeerCredentials] = []
        self.partner_platforms: dict[str, tuple[str, str]] = {}
        # The demo fleet's control endpoint and its token, once the simulators run.
        self.vehicle_controls: tuple[str, str] | None = None
        # What the hub started itself, watched by the status board (None when not started).
        self.broker_supervisor: Supervisor | None = None
        self.prefect_supervisor: Supervisor | None = None
        self.ingest_workers: Supervisor | None = None

    def start(self) -> Flask:
        """Bring everything up and return the web app to serve."""
        try:
            # One hub per instance folder: a second one would share its database and broker.
            lock = InstanceLock(self.settings.instance_path).acquire()
            self.stack.callback(lock.release)
            if self.simulate:
                self._start_partner_simulators()
            self._prepare_database()
            self._start_broker()
            self._start_prefect()
            return self._start_app()
        except BaseException:
            self.stack.close()
            raise

    def stop(self) -> None:
        """Stop everything that was started, newest first."""
        self.stack.close()

    def _on_stop(self, what: str, stop: Callable[[], object]) -> None:
        """Register a stop step that says what it stops and how long that took."""

        def timed() -> None:
            started = time.monotonic()
            stop()
            log.info("stopped %s in %.1f s", what, time.monotonic() - started)

        self.stack.callback(timed)

    # Steps ---------------------------------------------------------------------------------------

    def _prepare_database(self) -> None:
        from flask_migrate import upgrade

        core = create_core_app(self.settings)
        with core.app_context():
            upgrade(directory=str(MIGRATIONS_DIR))
            seed_cities(db.session)
            if self.demo:
                seed_demo_users(db.session)
                self.peers = seed_demo_fleet(db.session)
                seed_demo_registry(db.session)
                seed_flood_depots(db.session)
                seed_demo_conference(db.session)
                seed_demo_drills(db.session)
                seed_demo_flood(db.session)
            for city, (url, token) in self.partner_platforms.items():
                partners.register(
                    db.session,
                    Actor.system("demo"),
                    cities.by_slug(db.session, city),
                    url,
                    token,
                    settings=self.settings,
                    interval_seconds=self.settings.partner_sync_seconds,
                )
            db.session.commit()
            db.session.remove()
            db.engine.dispose()

    def _start_broker(self) -> None:
        if self.settings.mqtt_url is not None:
            return
        data_dir = self.settings.instance_path / "mosquitto"
        password = _hub_mqtt_password(self.settings.instance_path)
        self._hub_credentials = HubCredentials(HUB_MQTT_USERNAME, mosquitto_hash(password))
        core = create_core_app(self.settings)
        with core.app_context():
            password_file, acl_file = write_broker_files(
                db.session, data_dir / "auth", self._hub_credentials, self.settings.mqtt_root
            )
            db.session.remove()
        broker = ManagedMosquitto(
            MosquittoConfig(
                port=free_port(),
                data_dir=data_dir,
                allow_anonymous=False,
                password_file=password_file,
                acl_file=acl_file,
                user="root" if os.geteuid() == 0 else None,
            )
        )
        log.info("starting a local Mosquitto broker in %s", data_dir)
        # Restarted with backoff if it dies, on the same port, files and persistence (its
        # autosave_interval of 1 s keeps queued messages and sessions across a SIGKILL).
        self.broker_supervisor = Supervisor([broker]).start()
        self._on_stop("the MQTT broker", self.broker_supervisor.stop)
        self.broker = broker
        self.settings = self.settings.with_overrides(
            mqtt_url=broker.url, mqtt_username=HUB_MQTT_USERNAME, mqtt_password=password
        )

    def _start_prefect(self) -> None:
        if self.settings.prefect_api_url is None:
            database = self.settings.prefect_database_url
            server = ManagedPrefectServer(
                self.settings.instance_path / "prefect",
                env={"PREFECT_SERVER_DATABASE_CONNECTION_URL": database} if database else None,
                retention=timedelta(days=self.settings.prefect_retention_days),
            )
            log.info("starting a local Prefect server (home %s); about 10 s the first time", server.home)
            # Restarted with backoff if it dies, on the same port and home (its database).
            self.prefect_supervisor = Supervisor([server]).start()
            self._on_stop("the Prefect server", self.prefect_supervisor.stop)
            self.settings = self.settings.with_overrides(prefect_api_url=server.api_url)
        # Prefect reads its API URL when it is first imported, which happens below.
        os.environ["PREFECT_API_URL"] = self.settings.prefect_api_url or ""

    def _start_app(self) -> Flask:
        from connectors.mqtt_link import MqttLink, MqttLinkConfig
        from contracts.mqtt import hub_state_topic, hub_subscriptions
        from flows.context import use_app
        from flows.launcher import DeploymentLauncher, FlowDispatcher, Launcher, LocalLauncher
        from flows.mqtt_bridge import MqttBridge
        from flows.prefect_settings import disable_flow_heartbeats, drain_prefect_workers
        from flows.presence import NodePresence
        from flows.scheduler import Scheduler
        from web.app import create_app

        settings = self.settings
        disable_flow_heartbeats()
        # Registered first, so it runs last of this part: after the flows stop, before Prefect does.
        self._on_stop("Prefect's log and event queues", drain_prefect_workers)
        app = create_app(settings)
        self.app = app
        use_app(app)
        self.stack.callback(use_app, None)
        if settings.sqlalchemy_url.startswith("sqlite"):
            checkpointer = wal_checkpointer(app).start()
            self._on_stop("the SQLite checkpoints", checkpointer.stop)

        presence = NodePresence("hub", ["web", "dispatcher", "scheduler", "mqtt"]).start()
        self._on_stop("the node's presence", presence.stop)
        launcher: Launcher = LocalLauncher() if settings.flow_mode == "local" else DeploymentLauncher()
        dispatcher = FlowDispatcher(launcher, node=presence.name)
        dispatcher.start(recover=settings.flow_mode == "local")
        self._on_stop("the flow dispatcher", dispatcher.stop)
        app.extensions["flow_kicker"] = dispatcher

        self._start_ingest_workers()
        workers = settings.mqtt_ingest_workers
        everything = hub_subscriptions(settings.mqtt_root)
        own_telemetry = workers == 0 and not settings.mqtt_ingest_elsewhere
        own = hub_subscriptions(settings.mqtt_root, telemetry=own_telemetry)
        link = MqttLink(
            MqttLinkConfig(
                url=settings.mqtt_url or "",
                client_id=f"hub-{settings.hub_id}",
                state_topic=hub_state_topic(settings.mqtt_root, settings.hub_id),
                subscriptions=own,
                # With ingest workers the session must also drop the telemetry filters an earlier
                # run without them left in it, or every report would be stored twice over.
                unsubscriptions=tuple(f for f, _ in everything if (f, 1) not in own),
                username=settings.mqtt_username,
                password=settings.mqtt_password,
            )
        ).start()
        self._on_stop("the MQTT link", link.stop)
        app.extensions["mqtt_link"] = link
        link.wait_connected(30)
        bridge = MqttBridge(
            link,
            root=settings.mqtt_root,
            position_retention=timedelta(days=settings.position_retention_days),
            position_thin_after=timedelta(days=settings.position_thin_after_days),
            max_skew=timedelta(seconds=settings.clock_skew_seconds),
        )
        bridge.start()
        self._on_stop("the MQTT bridge", bridge.stop)
        app.extensions["mqtt_kicker"] = bridge
        if getattr(self, "broker", None) is not None:
            sync = BrokerSync(app, self.broker, self.broker.config.data_dir / "auth", self._hub_credentials)
            sync.start()
            self._on_stop("the broker file sync", sync.stop)
            app.extensions["broker_kicker"] = sync

        scheduler = Scheduler(settings, wake=dispatcher)
        scheduler.start()
        self._on_stop("the scheduler", scheduler.stop)
        board = self._status_board(app, link, dispatcher, scheduler).start()
        self._on_stop("the status checks", board.stop)
        app.extensions["status_board"] = board

        if self.simulate and self.peers:
            self._start_simulators()
        return app

    def _status_board(
        self, app: Flask, link: MqttLink, dispatcher: FlowDispatcher, scheduler: Scheduler
    ) -> StatusBoard:
        """Watch every part this hub runs, for the operator status page and its API."""
        board = StatusBoard()
        for supervisor in (self.broker_supervisor, self.prefect_supervisor, self.ingest_workers):
            if supervisor is not None:
                for process in supervisor.processes:
                    # "mosquitto:1883" is listed as "mosquitto", its port in the detail.
                    name = process.name.split(":", 1)[0]
                    board.register(name, "process", _process_check(process, supervisor))
        board.register("mqtt-link", "link", lambda: (link.connected, link.config.url))
        api_url = self.settings.prefect_api_url or ""
        board.register("prefect-api", "api", lambda: _prefect_api_check(api_url))
        board.register("database", "database", lambda: _database_check(app))
        board.register("flow-dispatcher", "thread", lambda: (dispatcher.alive(), self.settings.flow_mode))
        board.register("scheduler", "thread", lambda: (scheduler.alive(), ""))
        board.register("disk", "disk", lambda: disk_check(self.settings))
        return board

    def _start_ingest_workers(self) -> None:
        """Settle the workers' broker sessions, then start and supervise the worker processes."""
        from flows.ingest_worker import settle_sessions

        settings = self.settings
        if settings.mqtt_ingest_elsewhere:
            # Their sessions are theirs to keep: settling them here would end a live worker's.
            log.info("telemetry is stored by ingest workers run apart (HUB_MQTT_INGEST_ELSEWHERE)")
            return
        stored = settle_sessions(settings, settings.mqtt_ingest_workers)
        if stored:
            log.info("stored %d reports left with ingest workers no longer in use", stored)
        if not settings.mqtt_ingest_workers:
            return
        env = {**os.environ, **settings.process_env()}
        workers = [
            ManagedProcess(
                [sys.executable, "-m", "web", "mqtt", "ingest-worker", "--index", str(index)],
                log_path=settings.instance_path / "logs" / f"ingest-worker-{index}.log",
                env=env,
                name=f"ingest-worker-{index}",
            )
            for index in range(settings.mqtt_ingest_workers)
        ]
        self.ingest_workers = Supervisor(workers).start()
        self._on_stop("the ingest workers", self.ingest_workers.stop)
        log.info("started %d MQTT ingest workers", len(workers))

    def _start_partner_simulators(self) -> None:
        """Start one simulated city platform per city, each with its own token (demo only)."""
        from connectors.sims.partner import PartnerSimulator

        data = load_city_data()
        for row in data["cities"]:
            longitude, latitude = row["centre"]
            token = secrets.token_urlsafe(24)
            simulator = PartnerSimulator(
                row["slug"],
                token=token,
                name_zh=row["name_zh"],
                centre=(longitude, latitude),
                drift_interval=20.0,
            ).start()
            self._on_stop("a partner simulator", simulator.stop)
            self.partner_platforms[row["slug"]] = (simulator.url, token)

    def _start_simulators(self) -> None:
        from connectors.sims.vehicles import run_fleet_from_file

        path = self.settings.instance_path / "demo-vehicles.json"
        vehicles = [asdict(p) for p in self.peers if p.kind == "vehicle"]
        path.write_text(json.dumps(vehicles, ensure_ascii=False, indent=1), encoding="utf-8")
        path.chmod(0o600)
        cities = Path(__file__).resolve().parents[1] / "hub" / "data" / "huaihai_cities.json"
        fleet = run_fleet_from_file(path, cities, self.settings.mqtt_url or "")
        self._on_stop("the vehicle simulators", fleet.stop)
        # So a demo can show a vehicle dropping off and coming back (`hub sim control`).
        token = secrets.token_urlsafe(24)
        self.vehicle_controls = (fleet.serve_control(token), token)


def _process_check(process: Supervised, supervisor: Supervisor) -> Check:
    def check() -> tuple[bool, str]:
        return process.running, f"{process.name}, restarts {supervisor.restarts}"

    return check


def _prefect_api_check(api_url: str) -> tuple[bool, str]:
    response = requests.get(f"{api_url.rstrip('/')}/health", timeout=2)
    return response.ok, f"{api_url} HTTP {response.status_code}"


def _database_check(app: Flask) -> tuple[bool, str]:
    with app.app_context():
        try:
            db.session.execute(text("SELECT 1"))
            return True, db.engine.dialect.name
        finally:
            db.session.remove()
