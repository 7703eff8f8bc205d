"""Start hub processes for the tests that need several, on the test's database and Prefect API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from hub.config import Settings

REPOSITORY = Path(__file__).resolve().parents[2]


def spawn(
    module_args: list[str],
    settings: Settings,
    instance: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    own_group: bool = False,
) -> subprocess.Popen[bytes]:
    """Run `python -m <module_args>` as a hub process of the test: the test's database, keys and
    Prefect API, an instance folder of its own, output appended to `log`. With `own_group`, in a
    process group of its own, so that killing the group takes its children too."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HUB_"))}
    environment.update(
        HUB_DATABASE_URL=settings.database_url or "",
        HUB_INSTANCE_PATH=str(settings.instance_path / instance),
        HUB_SECRET_KEY=settings.secret_key,
        HUB_ENCRYPTION_KEY=settings.encryption_key or "",
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PYTHONPATH=str(REPOSITORY),
        **(env or {}),
    )
    return subprocess.Popen(
        [sys.executable, "-m", *module_args],
        cwd=REPOSITORY,
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )
