"""The managed broker follows the registry, also when another process changes it."""

from __future__ import annotations

import time
from pathlib import Path

from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.broker_auth import HubCredentials, mosquitto_hash, write_broker_files
from tests.hub.kernel.test_broker_auth import ADMIN, HUB_PASSWORD, Peer
from web.runner import BrokerSync


def _accepted(port: int, username: str, password: str) -> bool:
    peer = Peer(port, username, password)
    try:
        return peer.accepted()
    finally:
        peer.close()


def test_a_vehicle_registered_elsewhere_can_connect_without_a_restart(
    app, city, make_mosquitto, tmp_path: Path
):
    hub = HubCredentials("hub", mosquitto_hash(HUB_PASSWORD))
    directory = tmp_path / "auth"
    password_file, acl_file = write_broker_files(db.session, directory, hub)
    broker = make_mosquitto(allow_anonymous=False, password_file=password_file, acl_file=acl_file)
    sync = BrokerSync(app, broker, directory, hub, poll=0.2).start()
    try:
        time.sleep(0.6)
        assert sync.reloads == 0, "nothing changed, so the broker must not be reloaded"

        # As `hub fleet add-vehicle` in another process does: straight into the database.
        vehicle, secret = fleet.register_vehicle(db.session, ADMIN, city("suqian"), "v09", "宿迁9号")
        db.session.commit()
        deadline = time.monotonic() + 10
        while not _accepted(broker.port, vehicle.mqtt_username, secret):
            assert time.monotonic() < deadline, "the broker never learned the new vehicle"
            time.sleep(0.2)
        # Counted once the broker has confirmed the reload, which may come after the connect.
        while sync.reloads == 0:
            assert time.monotonic() < deadline, "the reload was never counted"
            time.sleep(0.05)
        time.sleep(0.6)
        assert sync.reloads == 1, "one change, one reload"
    finally:
        sync.stop()
