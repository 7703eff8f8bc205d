"""The hub's regional topology on one machine, every part a process of its own on its own ports.

What `hub topology up` starts, in this order (each on a free loopback port, as it would be on a
host of its own; docs/DEPLOYMENT.md gives the settings for real separate hosts):

- a PostgreSQL cluster of its own (initdb into the folder; as the `postgres` user when run as
  root) holding the hub's database and the Prefect server's (with `pg_trgm`), unless the hub's
  database and Prefect's are given;
- a regional Mosquitto broker, the one the hub and its ingest workers connect to, and one
  city-edge Mosquitto broker per edge city, each bridged to the regional one
  (`hub.runtime.edge_broker`: MQTT 3.1.1 bridges, each carrying its own city's subtree only);
- a Prefect server on PostgreSQL, and flow workers (`hub flows serve`) that run the hub's flows
  as deployments;
- hub web processes (`hub run`, each with its own HUB_ID, the same keys, flow dispatcher and
  scheduler in each, `HUB_FLOW_MODE=deployment`) behind haproxy, which checks `/api/v1/ready`
  and keeps no sticky sessions (a session is a signed cookie any web process reads);
- ingest workers (`hub mqtt ingest-worker`) on the regional broker, which receives every city's
  telemetry, edge or not (a shared subscription does not reach across a bridge);
- simulated vehicles of each edge city on that city's broker (`hub sim vehicles`).

The hub's processes are started as `python -m web …` commands, never imported: hub/ does not
depend on web/.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography.fernet import Fernet
from flask_migrate import upgrade

from hub.app import MIGRATIONS_DIR, create_core_app
from hub.config import Settings
from hub.extensions import db
from hub.fleet.seed import PeerCredentials, seed_demo_fleet
from hub.kernel.broker_auth import (
    HubCredentials,
    mosquitto_hash,
    new_secret,
    write_broker_files,
    write_edge_broker_files,
)
from hub.kernel.seed import seed_cities, seed_demo_users
from hub.runtime.edge_broker import EdgeBridge, bridge_account, bridge_config_lines
from hub.runtime.mosquitto import ManagedMosquitto, MosquittoConfig, mosquitto_binary
from hub.runtime.postgres import ManagedPostgres, postgres_bin
from hub.runtime.prefect_server import ManagedPrefectServer
from hub.runtime.processes import ManagedProcess, free_port, port_accepts

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
HUB_MQTT_USERNAME = "hub"
# The ingest workers' HUB_ID: their shared-subscription group and sessions are named after it.
INGEST_HUB_ID = "region"
DEFAULT_EDGE_CITIES = ("xuzhou", "suqian")
HAPROXY_CANDIDATES = ("/usr/sbin/haproxy", "/usr/bin/haproxy")


class HaproxyNotInstalledError(FileNotFoundError):
    """haproxy is missing."""


def haproxy_binary() -> Path:
    """Return haproxy's program, or raise with the command that installs it."""
    found = shutil.which("haproxy")
    candidates = [found] if found else []
    for candidate in [*candidates, *HAPROXY_CANDIDATES]:
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise HaproxyNotInstalledError("haproxy is not installed: apt-get install -y haproxy")


@dataclass(frozen=True)
class TopologyOptions:
    """What to bring up; the defaults are issue 15's topology."""

    directory: Path
    # The hub's database and the Prefect server's (postgresql+asyncpg://, with pg_trgm); without
    # them the topology runs a PostgreSQL cluster of its own for both.
    database_url: str | None = None
    prefect_database_url: str | None = None
    web_processes: int = 2
    # "deployment": flows run on the flow workers; "local": in the web processes (no workers).
    flow_mode: str = "deployment"
    flow_workers: int = 2
    ingest_workers: int = 2
    edge_cities: tuple[str, ...] = DEFAULT_EDGE_CITIES
    # Vehicles registered per city (0: none), simulated on each edge city's broker when
    # `simulate` (`hub sim vehicles`), sending `vehicle_rate` reports a second each.
    vehicles: int = 2
    simulate: bool = True
    vehicle_rate: float = 1.0
    demo_users: bool = True
    root: str = "hh"
    web_threads: int = 48


def haproxy_config(port: int, stats_port: int, servers: Iterable[tuple[str, int]]) -> str:
    """Return haproxy.cfg: round robin over the web processes, health-checked, no stickiness."""
    lines = [
        "global",
        "    log stdout format raw local0 info",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor",
        "    timeout connect 2s",
        "    timeout http-request 15s",
        # Longer than the desk stream's heartbeat (10 s), so an idle push stream stays open.
        "    timeout client 60s",
        "    timeout server 60s",
        # A web process killed between two health checks refuses the connection: haproxy tries
        # again, and each retry goes to another server (redispatch), so the user sees nothing.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "frontend hub",
        f"    bind {HOST}:{port}",
        "    default_backend web",
        "backend web",
        "    balance roundrobin",
        # Which web process answered, for the operator and the topology's test.
        "    http-response set-header X-Hub-Server %s",
        "    option httpchk GET /api/v1/ready",
        "    http-check expect status 200",
        "    default-server inter 1s fall 2 rise 2",
        *(f"    server {name} {HOST}:{server_port} check" for name, server_port in servers),
        "frontend stats",
        f"    bind {HOST}:{stats_port}",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 2s",
    ]
    return "\n".join(lines) + "\n"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _ready(base: str) -> Callable[[], bool]:
    """Return a check that a web process answers its readiness endpoint with 200."""
    return lambda: _http_ok(f"{base}/api/v1/ready")


def _log_says(path: Path, text: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return text in path.read_text(errors="replace")
        except FileNotFoundError:
            return False

    return check


class Topology:
    """Start every part, in dependency order; stop them all, newest first."""

    def __init__(self, options: TopologyOptions) -> None:
        self.options = options
        self.directory = options.directory.resolve()
        self.logs = self.directory / "logs"
        self.stack = ExitStack()
        self.postgres: ManagedPostgres | None = None
        self.regional: ManagedMosquitto | None = None
        self.edges: dict[str, ManagedMosquitto] = {}
        self.prefect: ManagedPrefectServer | None = None
        self.flow_workers: list[ManagedProcess] = []
        self.web: list[ManagedProcess] = []
        self.web_ports: list[int] = []
        self.ingest: list[ManagedProcess] = []
        self.vehicles: list[ManagedProcess] = []
        self.haproxy: ManagedProcess | None = None
        self.port = 0
        self.stats_port = 0
        self.database_url = ""
        self.prefect_database_url = ""
        self.peers: list[PeerCredentials] = []
        self._secrets: dict[str, str] = {}

    # What callers use --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the hub's address, through haproxy."""
        return f"http://{HOST}:{self.port}"

    @property
    def web_urls(self) -> list[str]:
        """Return each web process's own address (behind haproxy)."""
        return [f"http://{HOST}:{port}" for port in self.web_ports]

    def hub_env(self, hub_id: str) -> dict[str, str]:
        """Return the environment of a hub process of this topology (web, worker, command)."""
        assert self.regional is not None and self.prefect is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PREFECT_"))}
        env.update(
            HUB_ID=hub_id,
            HUB_DATABASE_URL=self.database_url,
            HUB_SECRET_KEY=self._secrets["secret_key"],
            HUB_ENCRYPTION_KEY=self._secrets["encryption_key"],
            HUB_MQTT_URL=self.regional.url,
            HUB_MQTT_USERNAME=HUB_MQTT_USERNAME,
            HUB_MQTT_PASSWORD=self._secrets["hub_mqtt_password"],
            HUB_MQTT_ROOT=self.options.root,
            HUB_MQTT_INGEST_ELSEWHERE="1",
            HUB_FLOW_MODE=self.options.flow_mode,
            # Plain HTTP on loopback; behind TLS on real hosts, leave this out.
            HUB_INSECURE_COOKIES="1",
            HUB_INSTANCE_PATH=str(self.directory / hub_id),
            PREFECT_API_URL=self.prefect.api_url,
            PREFECT_HOME=str(self.directory / hub_id / "prefect-client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )
        return env

    def describe(self) -> list[str]:
        """Return the lines that say where each part listens."""
        assert self.regional is not None and self.prefect is not None
        lines = [
            f"Hub (haproxy):      {self.url}/   (haproxy's statistics: http://{HOST}:{self.stats_port}/)",
            *(f"  web process {i + 1}:    {url}/" for i, url in enumerate(self.web_urls)),
            f"Hub database:       {self.database_url}",
            f"Prefect:            {self.prefect.ui_url}  (database {self.prefect_database_url})",
            f"  flows:            {self._flows_where()}",
            f"Regional broker:    {self.regional.url}  ({len(self.ingest)} ingest workers)",
            *(f"  {city} edge broker: {broker.url}" for city, broker in self.edges.items()),
            f"Settings for hub commands: set -a; . {self.directory / 'hub.env'}; set +a",
            f"Logs: {self.logs}",
        ]
        if self.vehicles:
            lines.insert(-2, f"Simulated vehicles: {self.options.vehicles} per edge city, on its broker")
        return lines

    def _flows_where(self) -> str:
        if self.options.flow_mode == "deployment":
            return f"{len(self.flow_workers)} flow workers (hub flows serve), HUB_FLOW_MODE=deployment"
        return "in the web processes, HUB_FLOW_MODE=local"

    # Bringing it up ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bring every part up, or nothing: a failure stops what had started and raises."""
        try:
            # Missing programs are found before a minute goes into starting the rest.
            haproxy_binary()
            mosquitto_binary()
            if not (self.options.database_url and self.options.prefect_database_url):
                postgres_bin()
            self.directory.mkdir(parents=True, exist_ok=True)
            self.logs.mkdir(exist_ok=True)
            self._load_secrets()
            self._start_databases()
            self._prepare_hub_database()
            self._start_brokers()
            self._start_prefect()
            self._write_env_file()
            self._start_flow_workers()
            self._start_web()
            self._start_haproxy()
            self._start_ingest_workers()
            self._start_vehicles()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started, newest first."""
        self.stack.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _load_secrets(self) -> None:
        """Keys made once per folder, so that a topology brought up again reads its own data."""
        path = self.directory / "secrets.json"
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self._secrets = {
            "secret_key": new_secret() + new_secret(),
            "encryption_key": Fernet.generate_key().decode(),
            "hub_mqtt_password": new_secret(),
            **{f"bridge_{city}": new_secret() for city in self.options.edge_cities},
            **known,
        }
        path.write_text(json.dumps(self._secrets, indent=1), encoding="utf-8")
        path.chmod(0o600)

    def _started(self, what: str, process: ManagedProcess | ManagedMosquitto | ManagedPostgres) -> None:
        self.stack.callback(process.stop)
        logger.info("%s up: %s", what, process.name)

    def _start_databases(self) -> None:
        options = self.options
        if options.database_url and options.prefect_database_url:
            self.database_url, self.prefect_database_url = options.database_url, options.prefect_database_url
            return
        folder = self.directory / "postgres"
        fresh = not (folder / "data" / "PG_VERSION").exists()
        if os.geteuid() == 0:
            # The server runs as `postgres`, which must reach its folder through ours.
            self.directory.chmod(self.directory.stat().st_mode | 0o011)
        self.postgres = ManagedPostgres(folder)
        self.postgres.start()
        self._started("PostgreSQL", self.postgres)
        if fresh:
            self.postgres.create_database("hub")
            self.postgres.create_database("prefect", extensions=("pg_trgm",))
        self.database_url = options.database_url or self.postgres.url("hub")
        self.prefect_database_url = options.prefect_database_url or self.postgres.url("prefect", "asyncpg")

    def _core_settings(self) -> Settings:
        return Settings(
            secret_key=self._secrets["secret_key"],
            encryption_key=self._secrets["encryption_key"],
            instance_path=self.directory / "setup",
            database_url=self.database_url,
            mqtt_root=self.options.root,
        )

    def _prepare_hub_database(self) -> None:
        """Migrate, seed the cities (and the demo log-ins), register the edge cities' vehicles."""
        app = create_core_app(self._core_settings())
        with app.app_context():
            upgrade(directory=str(MIGRATIONS_DIR))
            seed_cities(db.session)
            if self.options.demo_users:
                seed_demo_users(db.session)
            if self.options.vehicles:
                self.peers = seed_demo_fleet(db.session, self.options.vehicles)
            db.session.commit()
            db.session.remove()
            db.engine.dispose()

    def _mosquitto(self, name: str, **config: object) -> ManagedMosquitto:
        broker = ManagedMosquitto(
            MosquittoConfig(
                port=free_port(),
                data_dir=self.directory / name,
                allow_anonymous=False,
                user="root" if os.geteuid() == 0 else None,
                **config,  # type: ignore[arg-type]
            )
        )
        broker.start()
        self._started(name, broker)
        return broker

    def auth_dir(self, broker: str) -> Path:
        """Return where a broker's password and ACL files are written."""
        return self.directory / broker / "auth"

    def _start_brokers(self) -> None:
        root, secrets = self.options.root, self._secrets
        bridges = {
            city: EdgeBridge(city, HOST, 0, secrets[f"bridge_{city}"], root=root)
            for city in self.options.edge_cities
        }
        app = create_core_app(self._core_settings())
        with app.app_context():
            hub = HubCredentials(HUB_MQTT_USERNAME, mosquitto_hash(secrets["hub_mqtt_password"]))
            accounts = [bridge_account(b, mosquitto_hash(b.password)) for b in bridges.values()]
            regional_files = write_broker_files(
                db.session, self.auth_dir("regional-broker"), hub, root, extra_accounts=accounts
            )
            edge_files = {
                city: write_edge_broker_files(
                    db.session, self.directory / f"edge-{city}" / "auth", city, root
                )
                for city in bridges
            }
            db.session.remove()
            db.engine.dispose()
        self.regional = self._mosquitto(
            "regional-broker", password_file=regional_files[0], acl_file=regional_files[1]
        )
        for city, bridge in bridges.items():
            linked = EdgeBridge(city, HOST, self.regional.port, bridge.password, root=root)
            password_file, acl_file = edge_files[city]
            self.edges[city] = self._mosquitto(
                f"edge-{city}",
                password_file=password_file,
                acl_file=acl_file,
                extra=bridge_config_lines(linked),
            )
        # The bridges are up when the regional broker has taken each one's connection.
        deadline = time.monotonic() + 30
        for city in bridges:
            connected = _log_says(self.regional.log_path, f" as bridge-{city} ")
            while not connected():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the bridge of {city} did not connect; see {self.regional.log_path}")
                time.sleep(0.1)

    def _start_prefect(self) -> None:
        self.prefect = ManagedPrefectServer(
            self.directory / "prefect",
            env={"PREFECT_SERVER_DATABASE_CONNECTION_URL": self.prefect_database_url},
        )
        self.prefect.start()
        self.stack.callback(self.prefect.stop)
        logger.info("Prefect server up: %s", self.prefect.api_url)

    def _write_env_file(self) -> None:
        env = self.hub_env("cli")
        names = sorted(name for name in env if name.startswith("HUB_") or name == "PREFECT_API_URL")
        path = self.directory / "hub.env"
        path.write_text("".join(f"{name}={env[name]}\n" for name in names), encoding="utf-8")
        path.chmod(0o600)

    def _hub_process(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 120.0,
    ) -> ManagedProcess:
        process = ManagedProcess(
            [sys.executable, "-m", "web", *args],
            log_path=self.logs / f"{name}.log",
            env={**self.hub_env(name), **(env or {})},
            cwd=self.directory,
            ready=ready,
            ready_timeout=ready_timeout,
            stop_timeout=30.0,
            name=name,
        )
        (self.directory / name).mkdir(exist_ok=True)
        process.start()
        self._started(name, process)
        return process

    def _start_flow_workers(self) -> None:
        if self.options.flow_mode != "deployment":
            return
        for number in range(1, self.options.flow_workers + 1):
            name = f"flows-{number}"
            self.flow_workers.append(
                self._hub_process(
                    name,
                    ["flows", "serve"],
                    # A start within about 4 s of the request instead of 10 (FIELD-NOTES).
                    env={"PREFECT_RUNNER_POLL_FREQUENCY": "1"},
                    ready=_log_says(self.logs / f"{name}.log", "Your deployments are being served"),
                )
            )

    def _start_web(self) -> None:
        for number in range(1, self.options.web_processes + 1):
            port = free_port()
            self.web_ports.append(port)
            self.web.append(
                self._hub_process(
                    f"web-{number}",
                    ["run", "--host", HOST, "--port", str(port), "--threads", str(self.options.web_threads)],
                    ready=_ready(f"http://{HOST}:{port}"),
                )
            )

    def _start_haproxy(self) -> None:
        self.port, self.stats_port = free_port(), free_port()
        servers = [(f"web-{number}", port) for number, port in enumerate(self.web_ports, start=1)]
        config = self.directory / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.stats_port, servers), encoding="utf-8")
        self.haproxy = ManagedProcess(
            [haproxy_binary(), "-db", "-f", config],
            log_path=self.logs / "haproxy.log",
            ready=lambda: port_accepts(HOST, self.port) and _http_ok(f"{self.url}/api/v1/ready"),
            ready_timeout=30.0,
            name="haproxy",
        )
        self.haproxy.start()
        self._started("haproxy", self.haproxy)

    def _start_ingest_workers(self) -> None:
        for index in range(self.options.ingest_workers):
            self.ingest.append(
                self._hub_process(
                    f"ingest-{index}",
                    ["mqtt", "ingest-worker", "--index", str(index)],
                    env={
                        "HUB_ID": INGEST_HUB_ID,
                        "HUB_INSTANCE_PATH": str(self.directory / f"ingest-{index}"),
                    },
                    ready=_log_says(self.logs / f"ingest-{index}.log", " connected (session"),
                    ready_timeout=60.0,
                )
            )

    def vehicle_credentials(self, city: str) -> list[dict[str, str]]:
        """Return the broker accounts of the city's simulated vehicles."""
        return [
            {"city": p.city, "code": p.code, "username": p.username, "password": p.password}
            for p in self.peers
            if p.kind == "vehicle" and p.city == city
        ]

    def _start_vehicles(self) -> None:
        if not (self.options.vehicles and self.options.simulate):
            return
        for city, broker in self.edges.items():
            path = self.directory / f"edge-{city}" / "vehicles.json"
            path.write_text(json.dumps(self.vehicle_credentials(city), ensure_ascii=False), encoding="utf-8")
            path.chmod(0o600)
            rate = str(self.options.vehicle_rate)
            self.vehicles.append(
                self._hub_process(
                    f"vehicles-{city}",
                    ["sim", "vehicles", "--url", broker.url, "--credentials", str(path), "--rate", rate],
                )
            )
