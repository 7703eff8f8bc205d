"""Run the hub's helper processes: a Mosquitto broker and a Prefect server."""

from hub.runtime.mosquitto import (
    ManagedMosquitto,
    MosquittoConfig,
    MosquittoNotInstalledError,
    mosquitto_binary,
)
from hub.runtime.periodic import Periodic
from hub.runtime.prefect_server import ManagedPrefectServer
from hub.runtime.processes import (
    ManagedProcess,
    ProcessStartError,
    Supervised,
    Supervisor,
    free_port,
    port_accepts,
    process_group_alive,
    wait_for_port,
)

__all__ = [
    "ManagedMosquitto",
    "ManagedPrefectServer",
    "ManagedProcess",
    "MosquittoConfig",
    "MosquittoNotInstalledError",
    "Periodic",
    "ProcessStartError",
    "Supervised",
    "Supervisor",
    "free_port",
    "mosquitto_binary",
    "port_accepts",
    "process_group_alive",
    "wait_for_port",
]
