"""The partner-platform models, codec and OpenAPI description, against tests/samples/partner."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.common import WarningColour
from contracts.errors import ContractError, decode_json
from contracts.partner import (
    HUB_RECEIPT_PATH,
    MAX_MESSAGE_BYTES,
    OPENAPI_PATH,
    PAGE_MODELS,
    BulletinDelivery,
    BulletinKind,
    DeliveryAck,
    FeedKind,
    IncidentPage,
    ResourceItem,
    ResourceKind,
    ResourcePage,
    Scope,
    WarningPage,
    WarningStatus,
    decode_ack,
    decode_bulletin,
    decode_error,
    decode_page,
    decode_receipt,
    decode_verification_answer,
    decode_verification_request,
    encode,
    error_body,
    partner_openapi,
    render_openapi,
    write_openapi,
)
from contracts.schemas import SCHEMAS

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "partner"

# Each malformed sample and words its error message must contain, so a sample that fails for a
# reason other than the one it was written for does not pass unnoticed.
INVALID = {
    "partner-bulletin.addresses-itself.json": "the issuing city 'xuzhou' cannot be addressed",
    "partner-bulletin.exercise-string.json": "exercise: Input should be a valid boolean",
    "partner-bulletin.unknown-scope.json": "scope: Input should be 'public', 'restricted' or 'private'",
    "partner-bulletin.warning-without-colour.json": "a warning needs a colour",
    "partner-delivery-ack.refused-with-receipt.json": "a refused delivery cannot carry a receipt",
    "partner-incident-page.cursor-with-space.json": "next_cursor: String should match pattern",
    "partner-incident-page.has-more-string.json": "has_more: Input should be a valid boolean",
    "partner-incident-page.id-twice.json": "an id appears twice in one page",
    "partner-incident-page.more-but-empty.json": "has_more is true on an empty page",
    "partner-incident-page.out-of-order.json": "items are not ordered by updated_at",
    "partner-incident.id-with-space.json": "id: String should match pattern",
    "partner-incident.level-v.json": "level: Value error, level must be one of I, II, III, IV",
    "partner-incident.naive-datetime.json": "occurred_at: Input should have timezone info",
    "partner-incident.occurred-after-updated.json": "occurred_at is after updated_at",
    "partner-receipt.bad-uuid.json": "bulletin_id: Input should be a valid UUID",
    "partner-resource-page.truncated.json": "malformed JSON",
    "partner-resource.half-position.json": "give both lat and lon, or neither",
    "partner-resource.negative-quantity.json": "quantity: Input should be greater than or equal to 0",
    "partner-resource.string-quantity.json": "quantity: Value error, quantity must be a number",
    "partner-verification-request.asks-itself.json": "from_city and to_city must differ",
    "partner-meeting-invitation.method-differs.json": "calendar is not an iTIP CANCEL message",
    "partner-warning-page.no-cursor.json": "next_cursor: required but missing",
    "partner-warning.expires-before-issue.json": "expires_at must be after issued_at",
    "partner-warning.purple.json": "colour: Input should be 'red', 'orange', 'yellow' or 'blue'",
}


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_every_invalid_sample_has_an_expectation() -> None:
    assert {path.name for path in (SAMPLES / "invalid").iterdir()} == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_sample_is_refused_with_a_clear_message(name: str) -> None:
    model = SCHEMAS[name.split(".", 1)[0]]
    with pytest.raises(ContractError) as caught:
        decode_json(model, (SAMPLES / "invalid" / name).read_bytes())
    assert INVALID[name] in str(caught.value)
    assert str(caught.value).startswith(f"invalid {model.__name__}: ")


def test_every_partner_model_has_valid_and_invalid_samples() -> None:
    partner = {name for name in SCHEMAS if name.startswith("partner-")}
    valid = {path.name.split(".", 1)[0] for path in SAMPLES.glob("*.json")}
    invalid = {name.split(".", 1)[0] for name in INVALID}
    assert valid == partner
    assert invalid == partner - {"partner-verification-answer", "partner-error"}


@pytest.mark.parametrize(
    ("kind", "name", "model"),
    [
        (FeedKind.INCIDENTS, "partner-incident-page.json", IncidentPage),
        ("incidents", "partner-incident-page.empty.json", IncidentPage),
        (FeedKind.WARNINGS, "partner-warning-page.json", WarningPage),
        (FeedKind.RESOURCES, "partner-resource-page.json", ResourcePage),
    ],
)
def test_decode_page_reads_the_feed_of_its_kind(kind: FeedKind | str, name: str, model: type) -> None:
    page = decode_page(kind, _sample(name))
    assert isinstance(page, model)
    assert PAGE_MODELS[FeedKind(kind)] is model
    assert decode_page(kind, encode(page)) == page


def test_decode_page_refuses_another_feed_and_an_unknown_kind() -> None:
    with pytest.raises(ContractError, match="invalid WarningPage: items"):
        decode_page(FeedKind.WARNINGS, _sample("partner-incident-page.json"))
    with pytest.raises(ContractError, match="unknown feed 'vehicles'"):
        decode_page("vehicles", _sample("partner-incident-page.json"))


def test_sample_content_is_what_the_hub_reads() -> None:
    page = decode_page(FeedKind.INCIDENTS, _sample("partner-incident-page.json"))
    assert isinstance(page, IncidentPage)
    assert page.has_more
    assert [item.level.label_zh for item in page.items] == ["较大", "一般"]
    bulletin = decode_bulletin(_sample("partner-bulletin.json"))
    assert (bulletin.kind.label_zh, bulletin.scope.label_zh) == ("信息通报", "限定范围")
    assert bulletin.colour is None
    warning = decode_bulletin(_sample("partner-bulletin.warning-exercise.json"))
    assert warning.kind is BulletinKind.WARNING
    assert warning.colour is WarningColour.RED
    assert warning.scope is Scope.PUBLIC
    assert warning.exercise is True
    ack = decode_ack(_sample("partner-delivery-ack.immediate.json"))
    assert ack.receipt is not None
    assert ack.receipt.bulletin_id == bulletin.id
    assert decode_receipt(_sample("partner-receipt.json")) == ack.receipt
    refused = decode_ack(_sample("partner-delivery-ack.refused.json"))
    assert not refused.accepted
    assert refused.reason == "本通报未发送至临沂市"
    request = decode_verification_request(_sample("partner-verification-request.json"))
    answer = decode_verification_answer(_sample("partner-verification-answer.json"))
    assert answer.request_id == request.id
    assert decode_error(_sample("partner-error.json")).error.code == "bad_cursor"


def test_labels_are_chinese() -> None:
    assert ResourceKind.RESCUE_TEAM.label_zh == "救援队伍"
    assert {kind.label_zh for kind in ResourceKind} >= {"应急物资", "应急避难场所", "应急专家"}
    assert WarningStatus.CANCELLED.label_zh == "已解除"
    assert FeedKind.RESOURCES.label_zh == "应急资源"


def test_quantity_is_an_exact_number_on_the_wire() -> None:
    supplies = ResourceItem.model_validate_json(_sample("partner-resource.json"))
    assert supplies.quantity == Decimal("12.5")
    team = ResourceItem.model_validate_json(_sample("partner-resource.team.json"))
    assert json.loads(encode(team))["quantity"] == 48
    assert json.loads(encode(supplies))["quantity"] == 12.5
    data = json.loads(_sample("partner-resource.json"))
    for refused in (True, 1.2345, 10**13):
        with pytest.raises(ContractError, match="quantity"):
            decode_page(
                "resources",
                json.dumps({"items": [data | {"quantity": refused}], "next_cursor": "a", "has_more": False}),
            )


def test_an_ack_that_refuses_must_say_why() -> None:
    with pytest.raises(ContractError, match="a refused delivery needs a reason"):
        decode_ack(b'{"accepted": false, "platform_ref": "LY-1"}')
    assert DeliveryAck(accepted=True, platform_ref="LY-1").receipt is None


def test_bulletin_deadline_follows_issue() -> None:
    data = json.loads(_sample("partner-bulletin.json"))
    with pytest.raises(ContractError, match="receipt_deadline must be after issued_at"):
        decode_bulletin(json.dumps(data | {"receipt_deadline": data["issued_at"]}))
    assert BulletinDelivery.model_validate(data).addressed_cities == ("linyi", "suqian", "lianyungang")


def test_decoders_refuse_empty_and_oversized_bodies() -> None:
    with pytest.raises(ContractError, match="empty body"):
        decode_ack(b"  ")
    with pytest.raises(ContractError, match="more than the limit"):
        decode_receipt(b" " * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ContractError, match="more than the limit"):
        decode_page(FeedKind.INCIDENTS, _sample("partner-incident-page.json"), max_bytes=100)


def test_error_body_is_the_documented_shape() -> None:
    assert json.loads(error_body("unauthorized", "缺少令牌")) == {
        "error": {"code": "unauthorized", "message": "缺少令牌"}
    }


# OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_file_matches_the_models() -> None:
    assert OPENAPI_PATH.read_text("utf-8") == render_openapi(), (
        "contracts/openapi/partner-platform.json is out of date; run `python -m contracts.partner`"
    )


def test_write_openapi_writes_what_render_gives(tmp_path: Path) -> None:
    path = write_openapi(tmp_path / "sub" / "api.json")
    assert path.read_text("utf-8") == render_openapi()


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def test_openapi_describes_feeds_deliveries_and_auth() -> None:
    spec = partner_openapi()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {
        "/feeds/incidents",
        "/feeds/warnings",
        "/feeds/resources",
        "/bulletins",
        "/verification-requests",
        "/receipts",
        "/meeting-invitations",
    }
    assert spec["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    feed = spec["paths"]["/feeds/warnings"]["get"]
    assert {p["name"] for p in feed["parameters"]} == {"cursor", "limit"}
    assert feed["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WarningPage"
    }
    assert "401" in feed["responses"]
    bulletins = spec["paths"]["/bulletins"]["post"]
    assert bulletins["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BulletinDelivery"
    )
    assert HUB_RECEIPT_PATH in bulletins["description"]
    error = spec["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]


def test_every_openapi_reference_resolves() -> None:
    spec = partner_openapi()
    for ref in _refs(spec):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in spec["components"][section], ref
