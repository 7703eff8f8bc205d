"""The OpenAPI document describes exactly the routes the API serves."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from contracts.incidents import IncidentCreate

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Served without a token: the document itself, and readiness for load balancers.
PUBLIC = {("/openapi.json", "get"), ("/ready", "get")}


def _served(app: Flask) -> set[tuple[str, str]]:
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        served |= {(path, m.lower()) for m in rule.methods & METHODS}
    return served


def test_document_matches_routes(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document["servers"] == [{"url": "/api/v1"}]
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == _served(app)
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_bearer_is_the_security_scheme_of_every_operation_but_the_document(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert document["security"] == [{"bearer": []}]
    overridden = {
        (path, method): op["security"]
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "security" in op
    }
    assert overridden == {key: [] for key in PUBLIC}


def test_json_answers_and_refusals_are_described_by_models(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if (path, method) in PUBLIC:
                continue
            responses = op["responses"]
            assert {"401", "403", "422"} <= set(responses), (path, method)
            error = responses["422"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
            for status, answer in responses.items():
                assert "content" in answer, (path, method, status)


def test_every_reference_resolves_and_create_schema_is_the_contract(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    schemas = document["components"]["schemas"]
    refs = set(
        re.findall(
            r'"\$ref": "#/components/schemas/([^"]+)"',
            client.get("/api/v1/openapi.json").get_data(as_text=True),
        )
    )
    assert refs <= set(schemas), refs - set(schemas)
    assert set(schemas["IncidentCreate"]["properties"]) == set(IncidentCreate.model_fields)
    assert document["openapi"].startswith("3.1")
