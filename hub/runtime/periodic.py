"""Run an action every few seconds in a background thread until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Self

logger = logging.getLogger(__name__)


class Periodic:
    """Call `action` every `every` seconds; a failure is logged and the next call comes as usual."""

    def __init__(self, name: str, every: float, action: Callable[[], object]) -> None:
        self.name, self.every, self.action = name, every, action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        """Return whether `stop` was called (an action may check it between steps)."""
        return self._stop.is_set()

    def start(self) -> Self:
        """Start calling the action."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop, waiting for a call in progress to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.action()
            except Exception:
                logger.exception("%s failed; trying again in %.0f s", self.name, self.every)
