"""Every capability's declaration holds together: names, homes, references that resolve."""

from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask
from prefect import Flow

from hub import capabilities
from hub.capabilities import all_capabilities, flow_names, resolve

ROOT = Path(__file__).resolve().parents[2]


def test_each_capability_has_its_home_in_every_layer_it_uses() -> None:
    for capability in all_capabilities():
        name = capability.name
        assert (ROOT / "hub" / name / "__init__.py").exists()
        if capability.flows:
            assert (ROOT / "flows" / f"{name}.py").exists(), name
        if capability.blueprints or capability.api_blueprints:
            assert (ROOT / "web" / name / "__init__.py").exists(), name
        for target in (*capability.blueprints, *capability.api_blueprints):
            assert target.startswith(f"web.{name}."), target
        for target in capability.flows.values():
            assert target.startswith(f"flows.{name}:"), target


def test_every_reference_resolves_to_what_it_names() -> None:
    for name, target in flow_names().items():
        flow = resolve(target)
        assert isinstance(flow, Flow) and flow.name == name, target
    for capability in all_capabilities():
        for module in capability.models:
            importlib.import_module(module)
        for target in (*capability.blueprints, *capability.api_blueprints):
            assert resolve(target).name, target


def test_the_app_serves_every_declared_blueprint_and_navigation_entry(app: Flask) -> None:
    for capability in all_capabilities():
        for target in (*capability.blueprints, *capability.api_blueprints):
            assert resolve(target).name in app.blueprints
        for entry in capability.nav:
            assert entry.endpoint in app.view_functions, entry.endpoint


def test_names_are_listed_once_and_flow_names_are_unique() -> None:
    assert len(set(capabilities.NAMES)) == len(capabilities.NAMES)
    names = [n for c in all_capabilities() for n in c.flows]
    assert len(names) == len(set(names))


def test_each_capability_has_its_import_rule() -> None:
    """A new capability adds its name to NAMES and one import-linter block (see ARCHITECTURE.md)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"][
        "contracts"
    ]
    ruled = {
        contract["source_modules"][0].removeprefix("hub.")
        for contract in contracts
        if contract["name"].endswith("reaches other capabilities through their services only")
    }
    assert ruled == set(capabilities.NAMES)
    kernel = next(c for c in contracts if c["name"].startswith("The kernel depends on no capability"))
    assert {f"hub.{name}" for name in capabilities.NAMES} <= set(kernel["forbidden_modules"])
