"""The `hub` command: run the hub with its helper processes, manage data and users."""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import ExitStack

import click

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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Seed demo users for the ten cities; use a local secret.")
@click.option("--threads", default=8, show_default=True, type=int, help="WSGI worker threads.")
def run(host: str, port: int, demo: bool, threads: int) -> None:
    """Run the hub; start SQLite, Mosquitto and Prefect locally where none is configured."""
    settings = _settings(demo)
    stopping = threading.Event()
    with ExitStack() as stack:
        settings = _start_helpers(settings, stack)
        app = _prepare_app(settings, stack, demo=demo)
        from waitress.server import create_server

        server = create_server(app, host=host, port=port, threads=threads)
        stack.callback(server.close)

        def _shutdown(signum: int, frame: object) -> None:
            stopping.set()
            server.close()

        signal.signal(signal.SIGTERM, _shutdown)
        signal.signal(signal.SIGINT, _shutdown)
        _announce(settings, host, port, demo)
        try:
            server.run()
        except (OSError, ValueError):
            # waitress raises from its select loop once the sockets are closed by _shutdown.
            if not stopping.is_set():
                raise
        click.echo("Stopping the hub and everything it started …")
    click.echo("Stopped.")


def _start_helpers(settings: Settings, stack: ExitStack) -> Settings:
    """Start a local broker and Prefect server for whatever is not configured."""
    from hub.runtime import ManagedMosquitto, ManagedPrefectServer, MosquittoConfig, free_port

    if settings.mqtt_url is None:
        broker = ManagedMosquitto(
            MosquittoConfig(
                port=free_port(),
                data_dir=settings.instance_path / "mosquitto",
                user="root" if os.geteuid() == 0 else None,
            )
        )
        click.echo(f"Starting a local Mosquitto broker ({broker.config.data_dir}) …")
        broker.start()
        stack.callback(broker.stop)
        settings = settings.with_overrides(mqtt_url=broker.url)
    if settings.prefect_api_url is None:
        server = ManagedPrefectServer(settings.instance_path / "prefect")
        click.echo(f"Starting a local Prefect server (home {server.home}); this takes about 10 s …")
        server.start()
        stack.callback(server.stop)
        settings = settings.with_overrides(prefect_api_url=server.api_url)
    # Prefect reads its API URL when it is first imported, which happens after this point.
    os.environ["PREFECT_API_URL"] = settings.prefect_api_url or ""
    return settings


def _prepare_app(settings: Settings, stack: ExitStack, *, demo: bool) -> object:
    """Migrate, seed, build the web app and start the flow dispatcher."""
    from flask_migrate import upgrade

    from flows.context import use_app
    from flows.launcher import DeploymentLauncher, FlowDispatcher, Launcher, LocalLauncher
    from flows.prefect_settings import disable_flow_heartbeats
    from hub.app import MIGRATIONS_DIR
    from hub.extensions import db
    from hub.services.seed import seed_cities, seed_demo_users
    from web.app import create_app

    disable_flow_heartbeats()
    launcher: Launcher = LocalLauncher() if settings.flow_mode == "local" else DeploymentLauncher()
    app = create_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        seed_cities(db.session)
        if demo:
            seed_demo_users(db.session)
        db.session.commit()
    use_app(app)
    dispatcher = FlowDispatcher(launcher)
    dispatcher.start(recover=settings.flow_mode == "local")
    app.extensions["flow_kicker"] = dispatcher
    stack.callback(dispatcher.stop)
    return app


def _announce(settings: Settings, host: str, port: int, demo: bool) -> None:
    from hub.services.seed import DEMO_PASSWORD, DEMO_ROLES

    url = f"http://{host}:{port}/"
    lines = [
        "",
        "淮海应急协同枢纽 Huaihai Hub is running.",
        f"  Open:        {url}",
        f"  Database:    {settings.sqlalchemy_url}",
        f"  MQTT broker: {settings.mqtt_url}",
        f"  Prefect API: {settings.prefect_api_url}",
    ]
    if demo:
        suffixes = "/".join(suffix for suffix, _, _ in DEMO_ROLES)
        lines += [
            "  Demo log-ins (password for all: " + DEMO_PASSWORD + "):",
            f"    <city>-{{{suffixes}}}  e.g. linyi-coord, xuzhou-coord, heze-duty, jining-observer",
            "    cities: xuzhou lianyungang suqian suzhou-ah huaibei shangqiu zaozhuang jining linyi heze",
            "    admin   (hub administrator)",
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


@main.command()
@click.option("--demo-users", is_flag=True, help="Also create the demo users (demo only).")
def seed(demo_users: bool) -> None:
    """Load the ten member cities (and optionally the demo users)."""
    from hub.app import create_core_app
    from hub.extensions import db as database
    from hub.services.seed import seed_cities, seed_demo_users

    app = create_core_app(_settings())
    with app.app_context():
        cities = seed_cities(database.session)
        if demo_users:
            seed_demo_users(database.session)
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
    from hub.models import Role
    from hub.services import cities, users
    from hub.services.actors import Actor
    from hub.services.errors import ServiceError

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
    from hub.models import Role
    from hub.services import auth, cities
    from hub.services.actors import Actor
    from hub.services.errors import ServiceError

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


@main.group()
def flows() -> None:
    """Prefect flow commands."""


@flows.command("serve")
def flows_serve() -> None:
    """Serve the hub's flows as Prefect deployments (for HUB_FLOW_MODE=deployment)."""
    from prefect import serve

    from flows.context import use_app
    from flows.registry import DEPLOYMENT_NAME, FLOWS
    from hub.app import create_core_app

    use_app(create_core_app(_settings()))
    serve(*(f.to_deployment(name=DEPLOYMENT_NAME) for f in FLOWS.values()))
