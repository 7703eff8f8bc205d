"""The `hub` command: run the hub with its helper processes, manage data and users."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click
from waitress.wasyncore import ExitNow

from hub.config import ConfigError, Settings, settings_from_env

log = logging.getLogger("hub")


def _settings(demo: bool = False) -> Settings:
    try:
        return settings_from_env(demo=demo or None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Huaihai Hub (淮海应急协同枢纽)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class _StopServing(ExitNow):
    """Raised by the SIGTERM/SIGINT handler to leave the web server's loop.

    The signal may land while waitress reads or writes a connection, where it turns any other
    exception into "close this connection" and serves on; its `ExitNow` it lets through.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Demo users, vehicles and simulators for the ten cities.")
@click.option("--no-sim", is_flag=True, help="With --demo: do not start the vehicle simulators.")
@click.option(
    "--threads",
    default=48,
    show_default=True,
    type=int,
    help="WSGI worker threads. Each open desk holds one for its live stream (up to three quarters of them).",
)
def run(host: str, port: int, demo: bool, no_sim: bool, threads: int) -> None:
    """Run the hub; start SQLite, Mosquitto and Prefect locally where none is configured."""
    from waitress.server import create_server

    from web.desk import live as desk_live
    from web.runner import HubRunner

    runner = HubRunner(_settings(demo), demo=demo, simulate=demo and not no_sim)
    try:
        app = runner.start()
        watcher = desk_live.watcher(app)
        watcher.slots = desk_live.stream_slots_for(threads)
        watcher.ensure_started()
        server = create_server(app, host=host, port=port, threads=threads)

        stopping = threading.Event()

        def _shutdown(signum: int, frame: object) -> None:
            # Only the first signal stops serving. `make demo` forwards SIGTERM, so a SIGTERM to
            # its process group arrives twice, and an exception raised in the middle of the
            # shutdown below would skip stopping the broker and the Prefect server.
            if stopping.is_set():
                log.info("already stopping (signal %d); the hub stops everything it started", signum)
                return
            stopping.set()
            # Closing the listening socket is not enough: waitress keeps looping while browsers
            # hold keep-alive connections. Leaving its loop by an exception it lets through works.
            raise _StopServing

        try:
            signal.signal(signal.SIGTERM, _shutdown)
            signal.signal(signal.SIGINT, _shutdown)
            _announce(runner.settings, host, port, demo, runner.vehicle_controls)
            server.run()
        except _StopServing:
            pass
        finally:
            stopping.set()
            watcher.stop(wait=3.0)  # ends the desks' streams, which would hold their threads
            server.close()
        click.echo("Stopping the hub and everything it started …")
    finally:
        runner.stop()
    click.echo("Stopped.")


def _announce(
    settings: Settings, host: str, port: int, demo: bool, vehicle_controls: tuple[str, str] | None
) -> None:
    from hub.kernel.seed import DEMO_PASSWORD, DEMO_ROLES

    url = f"http://{host}:{port}/"
    lines = [
        "",
        "淮海应急协同枢纽 Huaihai Hub is running.",
        f"  Open:        {url}",
        f"  Database:    {settings.sqlalchemy_url}",
        f"  MQTT broker: {settings.mqtt_url}",
        f"  Prefect API: {settings.prefect_api_url}",
    ]
    if settings.mqtt_ingest_workers:
        lines.append(
            f"  Ingest workers: {settings.mqtt_ingest_workers} (logs in {settings.instance_path / 'logs'})"
        )
    if demo:
        suffixes = "/".join(suffix for suffix, _, _ in DEMO_ROLES)
        lines += [
            "  Demo log-ins (password for all: " + DEMO_PASSWORD + "):",
            f"    <city>-{{{suffixes}}}  e.g. linyi-coord, xuzhou-coord, heze-duty, jining-observer",
            "    cities: xuzhou lianyungang suqian suzhou-ah huaibei shangqiu zaozhuang jining linyi heze",
            "    admin   (hub administrator)",
        ]
    if vehicle_controls is not None:
        control_url, token = vehicle_controls
        lines += [
            "  Simulated vehicles: take one off the air and back with",
            f"    hub sim control --url {control_url} --token {token} list",
            "    … drop v01 --city linyi [--abrupt]   … back v01 --city linyi",
        ]
    lines += ["  Stop with Ctrl+C.", ""]
    click.echo("\n".join(lines))


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from flask_migrate import upgrade

    from hub.app import MIGRATIONS_DIR, create_core_app

    app = create_core_app(_settings())
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
    click.echo("Database is up to date.")


@db.command("backup")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
def db_backup(target: Path) -> None:
    """Write a consistent backup of the SQLite database and instance files, even while the hub runs."""
    from hub.kernel.backup import BackupError, backup

    try:
        report = backup(_settings(demo=os.environ.get("HUB_DEMO") == "1"), target)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Backup in {report.path}: database {report.database_bytes:,} bytes, files {', '.join(report.files)}"
    )


@db.command("restore")
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
def db_restore(source: Path) -> None:
    """Restore a backup into this instance; the hub must be stopped."""
    from hub.kernel.backup import BackupError, restore

    try:
        report = restore(_settings(demo=os.environ.get("HUB_DEMO") == "1"), source)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored {report.path} from {source}; start the hub to apply any newer migrations.")


@main.command()
@click.option(
    "--demo-users", is_flag=True, help="Also create the demo users and the demo registry (demo only)."
)
def seed(demo_users: bool) -> None:
    """Load the ten member cities (and optionally the demo users)."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.kernel.seed import seed_cities, seed_demo_users
    from hub.mutual_aid.demo import seed_flood_depots
    from hub.mutual_aid.seed import seed_demo_registry

    app = create_core_app(_settings())
    with app.app_context():
        cities = seed_cities(database.session)
        if demo_users:
            seed_demo_users(database.session)
            seed_demo_registry(database.session)
            seed_flood_depots(database.session)
        database.session.commit()
    click.echo(f"{len(cities)} cities loaded.")


@main.command("create-user")
@click.argument("username")
@click.option("--city", required=True, help="City slug, e.g. xuzhou.")
@click.option(
    "--role", required=True, type=click.Choice(["coordinator", "duty_officer", "observer", "admin"])
)
@click.option("--display-name", default="")
@click.password_option()
def create_user(username: str, city: str, role: str, display_name: str, password: str) -> None:
    """Create a user (the first administrator, for instance)."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.kernel import cities, users
    from hub.kernel.actors import Actor
    from hub.kernel.errors import ServiceError
    from hub.kernel.models import Role

    app = create_core_app(_settings())
    with app.app_context():
        try:
            users.create_user(
                database.session,
                Actor.system("cli"),
                username=username,
                display_name=display_name,
                password=password,
                city=cities.by_slug(database.session, city),
                role=Role(role),
            )
        except ServiceError as exc:
            raise click.ClickException(exc.message) from exc
        database.session.commit()
    click.echo(f"User {username} created.")


@main.command("issue-token")
@click.option("--city", required=True, help="City slug the token acts for.")
@click.option("--name", required=True, help="A name to recognise the token by.")
def issue_token(city: str, name: str) -> None:
    """Issue a bearer token for a city's platform; it is shown once."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.kernel import auth, cities
    from hub.kernel.actors import Actor
    from hub.kernel.errors import ServiceError
    from hub.kernel.models import Role

    app = create_core_app(_settings())
    with app.app_context():
        try:
            admin = Actor("system", "cli", None, Role.ADMIN)
            _, secret = auth.issue_token(
                database.session, admin, cities.by_slug(database.session, city), name
            )
        except ServiceError as exc:
            raise click.ClickException(exc.message) from exc
        database.session.commit()
    click.echo(secret)


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored partner token with the first key of HUB_ENCRYPTION_KEY.

    To rotate: put a new key in front (HUB_ENCRYPTION_KEY=new,old), run this, then drop the old key.
    """
    from hub.app import create_core_app, intending_to_write, settings_of
    from hub.extensions import db as database
    from hub.kernel.actors import Actor
    from hub.kernel.crypto import SecretUnreadable
    from hub.partners import services as partners

    app = create_core_app(_settings())
    with app.app_context(), intending_to_write():
        try:
            count = partners.rotate_tokens(database.session, Actor.system("cli"), settings_of(app))
        except SecretUnreadable as exc:
            raise click.ClickException(str(exc)) from exc
        database.session.commit()
    click.echo(f"{count} partner token(s) re-encrypted with the first key of HUB_ENCRYPTION_KEY.")


@main.group()
def flows() -> None:
    """Prefect flow commands."""


@flows.command("serve")
def flows_serve() -> None:
    """Serve the hub's flows as Prefect deployments (for HUB_FLOW_MODE=deployment)."""
    from prefect import serve

    from flows.context import use_app
    from flows.presence import NodePresence
    from flows.registry import DEPLOYMENT_NAME, flows
    from hub.app import create_core_app

    use_app(create_core_app(_settings()))
    # The runner polls the API every PREFECT_RUNNER_POLL_FREQUENCY seconds: a log line each time.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # On the status page as a node, marked stopped however it ends cleanly: until Prefect's runner
    # starts and takes SIGTERM over (it then returns from `serve`), SIGTERM leaves by this handler.
    presence = NodePresence("flow-worker", ["flow-worker"]).start()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        serve(*(f.to_deployment(name=DEPLOYMENT_NAME) for f in flows().values()))  # type: ignore[arg-type]  # a coroutine only inside an event loop
    finally:
        presence.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


@main.group("mqtt")
def mqtt_group() -> None:
    """MQTT ingest commands."""


@mqtt_group.command("ingest-worker")
@click.option(
    "--index", required=True, type=int, help="Which worker: its session is hub-<id>-ingest-<index>."
)
def ingest_worker(index: int) -> None:
    """Store vehicle telemetry from the shared subscription until SIGTERM (`hub run` starts these)."""
    from connectors.mqtt_link import MqttLinkStoppedError
    from flows.ingest_worker import run_worker
    from flows.presence import NodePresence

    settings = _settings()
    # Signals are taken by sigwait below, not by a handler: a handler setting the Event that the
    # main thread is waiting on can deadlock on the Event's own lock. Blocked before any thread
    # starts, so every thread inherits the mask.
    wanted = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["counts"] = run_worker(settings, index, stop)
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGUSR1)  # wakes the main thread when the worker ends by itself

    # On the status page as a node, beating from its own thread (which inherits the signal mask).
    presence = NodePresence(f"ingest-{index}", ["ingest"]).start()
    try:
        worker = threading.Thread(target=work, name="hub-ingest-worker")
        worker.start()
        signal.sigwait(wanted)
        stop.set()
        worker.join()
    finally:
        presence.stop()
    error = outcome.get("error")
    if isinstance(error, MqttLinkStoppedError | ValueError):
        raise click.ClickException(str(error)) from error
    if error is not None:
        raise error
    log.info("ingest worker %d stopped: %s", index, dict(outcome["counts"]))


@main.group("topology")
def topology_group() -> None:
    """The regional topology on one machine, every part a process of its own."""


@topology_group.command("up")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--database-url",
    default=None,
    help="The hub's PostgreSQL database (default: a cluster of the topology's own in DIR).",
)
@click.option(
    "--prefect-database-url",
    default=None,
    help="The Prefect server's database, postgresql+asyncpg://… with pg_trgm (default: in the cluster).",
)
@click.option("--web", "web_processes", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option(
    "--flow-mode",
    type=click.Choice(["deployment", "local"]),
    default="deployment",
    show_default=True,
    help="local: flows run in the web processes, and no flow workers start.",
)
@click.option("--flow-workers", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--ingest-workers", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option(
    "--edge-city",
    "edge_cities",
    multiple=True,
    default=("xuzhou", "suqian"),
    show_default=True,
    help="A city with an edge broker bridged to the regional one (repeat the option).",
)
@click.option("--vehicles", default=2, show_default=True, type=click.IntRange(0, 99), help="Per edge city.")
def topology_up(
    directory: Path,
    database_url: str | None,
    prefect_database_url: str | None,
    web_processes: int,
    flow_mode: str,
    flow_workers: int,
    ingest_workers: int,
    edge_cities: tuple[str, ...],
    vehicles: int,
) -> None:
    """Start PostgreSQL, Prefect and its workers, web processes behind haproxy, bridged brokers.

    Prints where each part listens and runs until Ctrl+C or SIGTERM, which stop everything.
    """
    from hub.runtime.topology import Topology, TopologyOptions

    options = TopologyOptions(
        directory=directory,
        database_url=database_url,
        prefect_database_url=prefect_database_url,
        web_processes=web_processes,
        flow_mode=flow_mode,
        flow_workers=flow_workers,
        ingest_workers=ingest_workers,
        edge_cities=edge_cities,
        vehicles=vehicles,
    )
    topology = Topology(options)
    click.echo(f"Starting the topology in {directory} (about a minute) …")
    try:
        topology.start()
    except (OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        lines = ["", "淮海应急协同枢纽 Huaihai Hub: regional topology up.", *topology.describe()]
        if options.demo_users:
            from hub.kernel.seed import DEMO_PASSWORD

            lines.append(f"Log-ins: <city>-coord, <city>-duty, admin; password {DEMO_PASSWORD}")
        click.echo("\n".join([*lines, "Stop with Ctrl+C.", ""]))
        _wait_for_stop_signal()
        click.echo("Stopping the topology …")
    finally:
        topology.stop()
    click.echo("Stopped.")


@main.group("fleet")
def fleet_group() -> None:
    """Register vehicles and linkage systems (MQTT peers)."""


def _register(kind: str, city: str, code: str, name: str, system_kind: str = "") -> None:
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.fleet import services as fleet
    from hub.fleet.models import LinkageSystem, Vehicle
    from hub.kernel import cities
    from hub.kernel.actors import Actor
    from hub.kernel.errors import ServiceError

    app = create_core_app(_settings())
    with app.app_context():
        peer: Vehicle | LinkageSystem
        try:
            place = cities.by_slug(database.session, city)
            if kind == "vehicle":
                peer, password = fleet.register_vehicle(
                    database.session, Actor.system("cli"), place, code, name
                )
            else:
                peer, password = fleet.register_linkage_system(
                    database.session, Actor.system("cli"), place, code, system_kind, name
                )
        except ServiceError as exc:
            raise click.ClickException(exc.message) from exc
        database.session.commit()
        click.echo(f"MQTT user name: {peer.mqtt_username}")
        click.echo(f"MQTT password:  {password}   (shown once; stored hashed)")
    click.echo("Rewrite the broker's files with `hub broker write-files` if you run the broker yourself.")


@fleet_group.command("add-vehicle")
@click.option("--city", required=True)
@click.option("--code", required=True, help="Id in the vehicle's topics, e.g. v07.")
@click.option("--name", default="")
def add_vehicle(city: str, code: str, name: str) -> None:
    """Register a mobile command vehicle and print its broker credentials."""
    _register("vehicle", city, code, name)


@fleet_group.command("add-linkage")
@click.option("--city", required=True)
@click.option("--code", required=True, help="Id in the system's topics, e.g. police110.")
@click.option("--kind", "system_kind", required=True, type=click.Choice(["110", "119", "120", "122"]))
@click.option("--name", default="")
def add_linkage(city: str, code: str, system_kind: str, name: str) -> None:
    """Register a 110/119/120/122 dispatch system and print its broker credentials."""
    _register("linkage", city, code, name, system_kind)


@main.group("broker")
def broker_group() -> None:
    """Files for a Mosquitto broker the hub does not run itself."""


@broker_group.command("write-files")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--hub-user", default="hub", show_default=True)
@click.option("--hub-password", envvar="HUB_MQTT_PASSWORD", required=True, help="Or HUB_MQTT_PASSWORD.")
@click.option(
    "--bridge-passwords",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="On the regional broker: a file of '<city> <password>' lines, one per city-edge bridge.",
)
def write_files(directory: Path, hub_user: str, hub_password: str, bridge_passwords: Path | None) -> None:
    """Write Mosquitto's password and ACL files from the registry (then send the broker SIGHUP)."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.kernel.broker_auth import HubCredentials, mosquitto_hash, write_broker_files
    from hub.runtime.edge_broker import EdgeBridge, bridge_account, read_bridge_passwords

    settings = _settings()
    bridges = []
    if bridge_passwords is not None:
        try:
            pairs = read_bridge_passwords(bridge_passwords.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.ClickException(f"{bridge_passwords}: {exc}") from exc
        for city, password in pairs.items():
            # Only the account matters here; the bridge's address is the edge broker's business.
            bridge = EdgeBridge(city, "", 0, password, root=settings.mqtt_root)
            bridges.append(bridge_account(bridge, mosquitto_hash(password)))
    app = create_core_app(settings)
    with app.app_context():
        hub = HubCredentials(hub_user, mosquitto_hash(hub_password))
        password_file, acl_file = write_broker_files(
            database.session, directory, hub, settings.mqtt_root, extra_accounts=bridges
        )
    click.echo(f"password_file {password_file}\nacl_file {acl_file}")


@broker_group.command("edge-files")
@click.option("--city", required=True, help="The city whose edge broker this is, e.g. xuzhou.")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def edge_files(city: str, directory: Path) -> None:
    """Write a city-edge broker's password and ACL files: that city's devices only, no hub account."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.kernel.broker_auth import write_edge_broker_files
    from hub.kernel.errors import NotFound

    settings = _settings()
    app = create_core_app(settings)
    with app.app_context():
        try:
            password_file, acl_file = write_edge_broker_files(
                database.session, directory, city, settings.mqtt_root
            )
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"password_file {password_file}\nacl_file {acl_file}")


def _host_port(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    """Read HOST:PORT."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, e.g. mqtt.region.example:1883, not {value!r}")
    return host, int(port)


@broker_group.command("edge-config")
@click.option("--city", required=True, help="The city whose edge broker this is, e.g. xuzhou.")
@click.option("--regional", required=True, callback=_host_port, help="The regional broker, HOST:PORT.")
@click.option(
    "--bridge-password",
    envvar="HUB_MQTT_BRIDGE_PASSWORD",
    required=True,
    help="Or HUB_MQTT_BRIDGE_PASSWORD: the bridge's password on the regional broker.",
)
@click.option("--root", envvar="HUB_MQTT_ROOT", default="hh", show_default=True, help="Or HUB_MQTT_ROOT.")
def edge_config(city: str, regional: tuple[str, int], bridge_password: str, root: str) -> None:
    """Print the bridge section of a city-edge broker's mosquitto.conf (to append to it).

    It runs on the city's edge host, which has no hub settings: only the topic root is read.
    """
    from hub.runtime.edge_broker import EdgeBridge, render_bridge_config

    try:
        bridge = EdgeBridge(city, regional[0], regional[1], bridge_password, root=root)
        click.echo(render_bridge_config(bridge), nl=False)
    except ValueError as exc:  # a malformed city slug, a line break in a value
        raise click.ClickException(str(exc)) from exc


@main.group("sim")
def sim_group() -> None:
    """Simulators that speak the hub's contracts over real sockets."""


def _control_address(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    """Read HOST:PORT, or a bare PORT on loopback."""
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, e.g. 127.0.0.1:8765, not {value!r}")
    return host or "127.0.0.1", int(port)


@sim_group.command("vehicles")
@click.option("--url", required=True, help="Broker, e.g. mqtt://127.0.0.1:1883")
@click.option(
    "--credentials",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON list of {city, code, username, password}.",
)
@click.option("--count", type=int, default=None, help="Only the first N vehicles of the file.")
@click.option("--rate", type=float, default=1.0, show_default=True, help="Reports per second per vehicle.")
@click.option(
    "--chaos",
    type=float,
    default=0.0,
    show_default=True,
    help="Chance per second that a vehicle drops off for a while.",
)
@click.option(
    "--control",
    metavar="HOST:PORT",
    default=None,
    callback=_control_address,
    help="Serve the controls of `hub sim control` here (port 0 picks a free one).",
)
@click.option(
    "--control-token",
    envvar="HUB_SIM_CONTROL_TOKEN",
    default=None,
    help="Bearer token the controls require (default: a new one, printed).",
)
def sim_vehicles(
    url: str,
    credentials: Path,
    count: int | None,
    rate: float,
    chaos: float,
    control: tuple[str, int] | None,
    control_token: str | None,
) -> None:
    """Drive simulated vehicles between the ten cities until Ctrl+C."""
    import secrets
    from importlib import resources

    from connectors.sims.vehicles import run_fleet_from_file

    cities = resources.files("hub.data").joinpath("huaihai_cities.json")
    fleet = run_fleet_from_file(credentials, str(cities), url, count=count, chaos=chaos, rate_hz=rate)
    try:
        click.echo(f"{len(fleet.vehicles)} simulated vehicles reporting to {url}; Ctrl+C stops them.")
        if control is not None:
            token = control_token or secrets.token_urlsafe(24)
            try:
                control_url = fleet.serve_control(token, host=control[0], port=control[1])
            except OSError as exc:
                raise click.ClickException(
                    f"cannot serve the controls on {control[0]}:{control[1]}: {exc}"
                ) from exc
            click.echo(f"Controls on {control_url}: hub sim control --url {control_url} list")
            if not control_token:
                click.echo(f"Control token: export HUB_SIM_CONTROL_TOKEN={token}")
        _wait_for_stop_signal()
    finally:
        fleet.stop()


def _wait_for_stop_signal() -> None:
    """Sleep until SIGINT or SIGTERM.

    The handler raises rather than sets an Event: setting an Event the main thread waits on, from
    a handler that runs in that same thread, can deadlock on the Event's own lock.
    """

    def stop(*_: object) -> None:
        raise _StopServing

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            signal.pause()
    except _StopServing:
        return


class _ControlClient:
    """Calls the controls of a running `hub sim vehicles --control`."""

    # Longer than the server's own waits: a clean drop up to 2 s, a return up to 5 s.
    TIMEOUT = 15.0

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: object = None
    ) -> Any:
        """Send one request and return its JSON answer; raise ClickException on any failure."""
        import requests

        try:
            response = requests.request(
                method,
                self.url + path,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.TIMEOUT,
            )
        except requests.ConnectionError as exc:
            raise click.ClickException(
                f"cannot reach the controls at {self.url}; is `hub sim vehicles --control …` running there?"
            ) from exc
        except requests.Timeout as exc:
            raise click.ClickException(
                f"the controls at {self.url} did not answer in {self.TIMEOUT:g} s"
            ) from exc
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot call the controls at {self.url}: {exc}") from exc
        with response:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if response.ok and answer is not None:
                return answer
            try:
                message = answer["error"]["message"]
            except (TypeError, KeyError):
                message = response.text[:200] or response.reason
            raise click.ClickException(f"the controls answered HTTP {response.status_code}: {message}")


def _vehicle_path(code: str, action: str) -> str:
    from urllib.parse import quote

    return f"/_sim/vehicles/{quote(code, safe='')}/{action}"


@sim_group.group("control")
@click.option(
    "--url",
    envvar="HUB_SIM_CONTROL_URL",
    required=True,
    help="The address `hub sim vehicles --control` printed, e.g. http://127.0.0.1:8765",
)
@click.option("--token", envvar="HUB_SIM_CONTROL_TOKEN", required=True, help="The controls' bearer token.")
@click.pass_context
def sim_control(ctx: click.Context, url: str, token: str) -> None:
    """Drop simulated vehicles off and bring them back while `hub sim vehicles` runs."""
    ctx.obj = _ControlClient(url, token)


@sim_control.command("list")
@click.pass_obj
def sim_control_list(client: _ControlClient) -> None:
    """Show every simulated vehicle: connected or not, session, status, position."""
    rows = [("CODE", "CITY", "CONNECTED", "SESSION", "STATUS", "LAT", "LON")]
    rows += [
        (
            vehicle["code"],
            vehicle["city"],
            "yes" if vehicle["connected"] else "no",
            str(vehicle["session"]),
            vehicle["status"],
            f"{vehicle['lat']:.5f}",
            f"{vehicle['lon']:.5f}",
        )
        for vehicle in client.call("GET", "/_sim/vehicles")
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@sim_control.command("drop")
@click.argument("code")
@click.option("--abrupt", is_flag=True, help="Cut the link without DISCONNECT: the broker sends the will.")
@click.option("--city", default=None, help="The vehicle's city, when codes repeat across cities.")
@click.pass_obj
def sim_control_drop(client: _ControlClient, code: str, abrupt: bool, city: str | None) -> None:
    """Take a simulated vehicle off the broker, cleanly or abruptly."""
    params = {"city": city} if city else None
    client.call("POST", _vehicle_path(code, "drop"), params=params, body={"abrupt": abrupt})
    how = "abruptly; the broker sends its last will" if abrupt else "cleanly"
    click.echo(f"{code} dropped off {how}.")


@sim_control.command("back")
@click.argument("code")
@click.option("--city", default=None, help="The vehicle's city, when codes repeat across cities.")
@click.pass_obj
def sim_control_back(client: _ControlClient, code: str, city: str | None) -> None:
    """Bring a dropped simulated vehicle back onto the broker."""
    params = {"city": city} if city else None
    vehicle = client.call("POST", _vehicle_path(code, "back"), params=params)
    if vehicle["connected"]:
        click.echo(f"{code} is back online, session {vehicle['session']}.")
    else:
        click.echo(f"{code} is not connected yet; the simulator keeps trying.")


@sim_group.command("partner")
@click.option("--city", required=True, help="City slug, e.g. linyi.")
@click.option("--port", type=int, required=True)
@click.option("--token", envvar="HUB_SIM_TOKEN", required=True, help="Bearer token the hub must present.")
@click.option(
    "--receipts",
    "receipt_mode",
    type=click.Choice(["immediate", "delayed", "never"]),
    default="never",
    show_default=True,
    help="never: delivery only, until a person signs (the default); delayed: post a signature later.",
)
@click.option("--hub-url", default=None, help="Where delayed receipts go, e.g. http://127.0.0.1:8000")
@click.option("--hub-token", envvar="HUB_SIM_HUB_TOKEN", default=None, help="The city's token at the hub.")
@click.option(
    "--records",
    type=(int, int, int),
    default=(50, 10, 40),
    show_default=True,
    help="Initial incidents, warnings and resources.",
)
@click.option("--drift", type=float, default=30.0, show_default=True, help="Seconds between data changes.")
def sim_partner(
    city: str,
    port: int,
    token: str,
    receipt_mode: str,
    hub_url: str | None,
    hub_token: str | None,
    records: tuple[int, int, int],
    drift: float,
) -> None:
    """Run a simulated city platform that speaks the partner contract, until Ctrl+C."""
    from connectors.sims.partner import run_partner
    from hub.kernel.seed import load_city_data

    row = next((c for c in load_city_data()["cities"] if c["slug"] == city), None)
    if row is None:
        raise click.ClickException(f"unknown city: {city!r}")
    click.echo(f"Simulated platform of {row['name_zh']} on http://127.0.0.1:{port}; Ctrl+C stops it.")
    run_partner(
        city,
        port,
        token,
        receipt_mode=receipt_mode,
        hub_url=hub_url,
        hub_token=hub_token,
        initial=records,
        drift_interval=drift or None,
        name_zh=row["name_zh"],
        centre=tuple(row["centre"]),
    )
