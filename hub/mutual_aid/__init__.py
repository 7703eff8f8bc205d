"""Mutual aid between the cities: the registry, requests, commitments and their rules."""

from __future__ import annotations

from hub.capabilities import Capability

CAPABILITY = Capability(name="mutual_aid", models=("hub.mutual_aid.models",))
