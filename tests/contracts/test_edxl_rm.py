"""EDXL-RM 1.0 out and in: every message type round-trips, the ID chain holds, hostile input is refused."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from defusedxml.ElementTree import fromstring

from contracts.edxl_rm import (
    GML_NS,
    MSG_NS,
    RM_NS,
    Contact,
    ContactRole,
    Funding,
    MessageType,
    Quantity,
    ResourceInfo,
    Response,
    ResponseType,
    RmError,
    RmMessage,
    Schedule,
    ScheduleType,
    ValueList,
    build_rm,
    commitment_to_rm,
    lines_from_rm,
    offer_to_rm,
    parse_rm,
    reply,
    request_to_rm,
)
from contracts.errors import ContractError
from contracts.mutual_aid import (
    AidCommitment,
    AidOffer,
    AidRequest,
    AidState,
    GeoPoint,
    ReportTo,
    RequestLine,
)
from contracts.resource_types import GRADE_VALUE_LIST_URN, TYPE_VALUE_LIST_URN, Grade

CITIES = {
    city["slug"]: city
    for city in json.loads(
        (Path(__file__).resolve().parents[2] / "hub" / "data" / "huaihai_cities.json").read_text("utf-8")
    )["cities"]
}
NOW = datetime(2026, 7, 12, 8, 0, tzinfo=UTC)
LINYI = GeoPoint(lat=CITIES["linyi"]["centre"][1], lon=CITIES["linyi"]["centre"][0])
REQUESTER = Contact(description="linyi 临沂市应急管理局 值班室 0539-8888888", role=ContactRole.REQUESTER)
OWNER = Contact(description="xuzhou 徐州市应急管理局 值班室", role=ContactRole.OWNER)


def flood_request() -> AidRequest:
    report_to = ReportTo(place="临沂市河东区防汛指挥部", point=LINYI)
    return AidRequest(
        id=uuid4(),
        requesting_city="linyi",
        incident_id=uuid4(),
        title="沂河洪水 请求排涝和水上救援支援",
        lines=(
            RequestLine(
                line_id="1",
                type_code="equipment.pump.drainage",
                quantity=Decimal(10),
                unit="台",
                needed_by=NOW + timedelta(hours=6),
                duration_hours=72,
                report_to=report_to,
            ),
            RequestLine(
                line_id="2",
                type_code="team.water",
                min_grade=Grade.MEDIUM,
                quantity=Decimal(2),
                unit="支",
                needed_by=NOW + timedelta(hours=4),
                duration_hours=48,
                report_to=report_to,
                note="需自带冲锋舟",
            ),
        ),
        contact={"name": "李指挥", "phone": "0539-8888888"},
        created_at=NOW,
    )


def a_line(**changes: object) -> ResourceInfo:
    base = ResourceInfo(
        element_id="1",
        resource_id="xz-pump-001",
        name="排涝泵",
        type=ValueList(list_urn=TYPE_VALUE_LIST_URN, values=("equipment.pump.drainage",)),
        quantity=Quantity(
            amount=Decimal("4"), unit=ValueList(list_urn="urn:x-huaihai-hub:vocab:unit", values=("台",))
        ),
    )
    return base.model_copy(update=changes)


def every_message_type() -> list[RmMessage]:
    """One message of each type, carrying what its schema allows, in the order of an exchange."""
    start = request_to_rm(flood_request(), message_id="hh:linyi:rm:0001", sent_at=NOW)
    answer = Response(preceding_element_id="1", type=ResponseType.ACCEPT)
    status = ValueList(list_urn="urn:x-huaihai-hub:vocab:aid-state", values=("arrived",))
    steps: list[tuple[MessageType, ResourceInfo, tuple[Funding, ...]]] = [
        (
            MessageType.RESPONSE_TO_REQUEST_RESOURCE,
            a_line(
                response=answer,
                owner="xuzhou",
                price_quote=Quantity(amount=Decimal("14400.00")),
                availability="available",
                schedules=(Schedule(type=ScheduleType.ESTIMATED_ARRIVAL, at=NOW + timedelta(hours=3)),),
            ),
            (),
        ),
        (MessageType.REQUISITION_RESOURCE, a_line(), (Funding(code="HH-MA-2026", info="淮海互助基金"),)),
        (
            MessageType.COMMIT_RESOURCE,
            a_line(response=answer, order_id="XZ-2026-0712-01", deployment_status=status),
            (),
        ),
        (MessageType.REQUEST_INFORMATION, a_line(availability="unknown"), ()),
        (
            MessageType.REPORT_RESOURCE_DEPLOYMENT_STATUS,
            a_line(
                deployment_status=status,
                schedules=(
                    Schedule(
                        type=ScheduleType.CURRENT,
                        at=NOW + timedelta(hours=5),
                        place="沂河大桥东侧",
                        point=GeoPoint(lat=35.07, lon=118.36),
                    ),
                ),
            ),
            (),
        ),
        (
            MessageType.REQUEST_EXTENDED_DEPLOYMENT_DURATION,
            a_line(
                schedules=(
                    Schedule(type=ScheduleType.ESTIMATED_RETURN_DEPARTURE, at=NOW + timedelta(days=5)),
                )
            ),
            (),
        ),
        (MessageType.REQUEST_RETURN, a_line(order_id="XZ-2026-0712-01"), ()),
        (
            MessageType.RESPONSE_TO_REQUEST_RETURN,
            a_line(response=answer, deployment_status=status, availability="release on 2026-07-16"),
            (),
        ),
        (
            MessageType.RELEASE_RESOURCE,
            a_line(
                schedules=(Schedule(type=ScheduleType.ACTUAL_RETURN_DEPARTURE, at=NOW + timedelta(days=4)),)
            ),
            (),
        ),
    ]
    messages = [start]
    for number, (kind, info, funding) in enumerate(steps, start=2):
        messages.append(
            reply(
                messages[-1],
                kind,
                message_id=f"hh:rm:{number:04d}",
                sent_at=NOW + timedelta(minutes=number),
                contacts=(OWNER,),
                resources=(info,),
                funding=funding,
            )
        )
    return messages


@pytest.mark.parametrize("message", every_message_type(), ids=lambda m: m.type.value)
def test_every_message_type_round_trips(message: RmMessage) -> None:
    document = build_rm(message)
    assert parse_rm(document) == message
    root = fromstring(document)
    assert root.tag == f"{{{MSG_NS}}}{message.type.value}"
    assert root.findtext(f"{{{MSG_NS}}}MessageContentType") == message.type.value


def test_the_ten_types_are_covered_and_chained() -> None:
    messages = every_message_type()
    assert {m.type for m in messages} == set(MessageType)
    first = messages[0]
    assert first.originating_message_id == first.message_id and first.preceding_message_id is None
    for before, after in itertools.pairwise(messages):
        assert after.originating_message_id == first.message_id
        assert after.preceding_message_id == before.message_id
        assert after.incident_id == first.incident_id


def test_request_elements_are_where_the_schema_puts_them() -> None:
    request = flood_request()
    document = build_rm(request_to_rm(request, message_id="hh:linyi:rm:0001", sent_at=NOW))
    root = fromstring(document)
    info = root.findall(f"{{{MSG_NS}}}ResourceInformation")[1]
    type_value = info.find(f"{{{MSG_NS}}}Resource/{{{MSG_NS}}}TypeStructure/{{{RM_NS}}}Value")
    assert type_value is not None and type_value.text == "team.water"
    keyword = info.find(f"{{{MSG_NS}}}Resource/{{{MSG_NS}}}Keyword/{{{RM_NS}}}ValueListURN")
    assert keyword is not None and keyword.text == GRADE_VALUE_LIST_URN
    amount = info.find(
        f"{{{MSG_NS}}}AssignmentInformation/{{{MSG_NS}}}Quantity/{{{RM_NS}}}MeasuredQuantity/{{{RM_NS}}}Amount"
    )
    assert amount is not None and amount.text == "2"
    pos = info.find(f".//{{{RM_NS}}}TargetArea/{{{GML_NS}}}Point/{{{GML_NS}}}pos")
    assert pos is not None and pos.text == f"{LINYI.lat!r} {LINYI.lon!r}"
    assert root.find(f"{{{MSG_NS}}}PrecedingMessageID") is None
    order = [child.tag.split("}")[1] for child in root]
    assert order[:4] == ["MessageID", "SentDateTime", "MessageContentType", "MessageDescription"]


def test_a_partner_request_imports_as_the_lines_it_was_made_from() -> None:
    request = flood_request()
    document = build_rm(request_to_rm(request, message_id="urn:uuid:" + str(uuid4()), sent_at=NOW))
    assert lines_from_rm(parse_rm(document)) == request.lines


def test_offer_and_commitment_answer_the_request() -> None:
    request = flood_request()
    start = request_to_rm(request, message_id="hh:linyi:rm:0001", sent_at=NOW)
    offer = AidOffer(
        id=uuid4(),
        request_id=request.id,
        line_id="1",
        offering_city="xuzhou",
        resource_id="xz-pump-001",
        type_code="equipment.pump.drainage",
        quantity=Decimal(4),
        unit="台",
        estimated_arrival=NOW + timedelta(hours=3),
        estimated_cost=Decimal("14400"),
        offered_at=NOW,
        valid_until=NOW + timedelta(minutes=30),
    )
    response = offer_to_rm(offer, start, message_id="hh:xuzhou:rm:0001", sent_at=NOW, contact=OWNER)
    assert parse_rm(build_rm(response)) == response
    assert response.resources[0].response == Response(preceding_element_id="1", type=ResponseType.ACCEPT)
    commitment = AidCommitment(
        id=uuid4(),
        offer_id=offer.id,
        request_id=request.id,
        line_id="1",
        owner_city="xuzhou",
        requesting_city="linyi",
        resource_id="xz-pump-001",
        quantity=Decimal(4),
        unit="台",
        start=NOW + timedelta(hours=3),
        end=NOW + timedelta(days=3),
        state=AidState.AUTHORISED,
        order_number="XZ-2026-0712-01",
        estimated_cost=Decimal("14400"),
        updated_at=NOW,
    )
    for kind in (
        MessageType.COMMIT_RESOURCE,
        MessageType.REPORT_RESOURCE_DEPLOYMENT_STATUS,
        MessageType.RELEASE_RESOURCE,
        MessageType.REQUEST_RETURN,
        MessageType.RESPONSE_TO_REQUEST_RETURN,
        MessageType.REQUEST_EXTENDED_DEPLOYMENT_DURATION,
    ):
        message = commitment_to_rm(
            commitment, response, kind, message_id=f"hh:xuzhou:rm:{kind.value}", sent_at=NOW, contact=OWNER
        )
        imported = parse_rm(build_rm(message))
        assert imported == message
        assert imported.preceding_message_id == response.message_id
        assert imported.originating_message_id == start.message_id
    commit = commitment_to_rm(
        commitment, response, MessageType.COMMIT_RESOURCE, message_id="c1", sent_at=NOW, contact=OWNER
    )
    assert commit.resources[0].order_id == "XZ-2026-0712-01"
    assert commit.resources[0].deployment_status is not None
    assert commit.resources[0].deployment_status.values == ("authorised",)


@pytest.mark.parametrize(
    ("kind", "info", "words"),
    [
        (MessageType.COMMIT_RESOURCE, a_line(), "answers each line with ResponseInformation"),
        (
            MessageType.REQUEST_RETURN,
            a_line(response=Response(preceding_element_id="1", type=ResponseType.ACCEPT)),
            "carries no ResponseInformation",
        ),
        (
            MessageType.REQUEST_RETURN,
            a_line(schedules=(Schedule(type=ScheduleType.ACTUAL_RETURN_ARRIVAL, at=NOW),)),
            "ScheduleType ActualReturnArrival is not allowed",
        ),
        (
            MessageType.RESPONSE_TO_REQUEST_RESOURCE,
            a_line(response=Response(preceding_element_id="1", type=ResponseType.DECLINE), order_id="XZ-1"),
            "cannot carry OrderID",
        ),
        (
            MessageType.RESPONSE_TO_REQUEST_RETURN,
            a_line(response=Response(preceding_element_id="1", type=ResponseType.ACCEPT)),
            "gives DeploymentStatus and Availability",
        ),
        (MessageType.REQUISITION_RESOURCE, a_line(), "needs Funding"),
        (MessageType.RELEASE_RESOURCE, ResourceInfo(element_id="1"), "names the resource"),
    ],
)
def test_what_a_message_type_cannot_carry_is_refused(
    kind: MessageType, info: ResourceInfo, words: str
) -> None:
    previous = request_to_rm(flood_request(), message_id="m0", sent_at=NOW)
    with pytest.raises(RmError, match=words):
        reply(previous, kind, message_id="m1", sent_at=NOW, contacts=(OWNER,), resources=(info,))


def test_a_request_starts_its_chain() -> None:
    with pytest.raises(ValueError, match="OriginatingMessageID must be its MessageID"):
        RmMessage(
            type=MessageType.REQUEST_RESOURCE,
            message_id="m1",
            sent_at=NOW,
            originating_message_id="m0",
            contacts=(REQUESTER,),
            resources=(a_line(),),
        )
    with pytest.raises(RmError, match="answers nothing"):
        reply(
            request_to_rm(flood_request(), message_id="m0", sent_at=NOW),
            MessageType.REQUEST_RESOURCE,
            message_id="m1",
            sent_at=NOW,
            contacts=(REQUESTER,),
        )


def _document(body: str, root: str = "CommitResource") -> bytes:
    return (
        f'<?xml version="1.0"?><{root} xmlns="{MSG_NS}" xmlns:rm="{RM_NS}">'
        f"<MessageID>m2</MessageID><SentDateTime>2026-07-12T08:00:00+08:00</SentDateTime>"
        f"<MessageContentType>{root}</MessageContentType>{body}</{root}>"
    ).encode()


def test_a_partner_commit_written_by_hand_is_read() -> None:
    body = (
        "<OriginatingMessageID>m0</OriginatingMessageID><PrecedingMessageID>m1</PrecedingMessageID>"
        "<ContactInformation><rm:ContactRole>Owner</rm:ContactRole></ContactInformation>"
        "<ResourceInformation><ResourceInfoElementID>1</ResourceInfoElementID>"
        "<ResponseInformation><rm:PrecedingResourceInfoElementID>1</rm:PrecedingResourceInfoElementID>"
        "<rm:ResponseType>Accept</rm:ResponseType></ResponseInformation>"
        "<Resource><ResourceID>zz-boat-3</ResourceID><Credentials>skipped</Credentials></Resource>"
        "<AssignmentInformation><Quantity><rm:MeasuredQuantity><rm:Amount>3.0</rm:Amount>"
        "</rm:MeasuredQuantity></Quantity><OrderID>ZZ-17</OrderID></AssignmentInformation>"
        "</ResourceInformation>"
    )
    message = parse_rm(_document(body))
    assert message.type is MessageType.COMMIT_RESOURCE
    line = message.resources[0]
    assert (line.resource_id, line.order_id) == ("zz-boat-3", "ZZ-17")
    assert line.quantity is not None and line.quantity.amount == Decimal(3)
    assert message.sent_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"<CommitResource/>", "no namespace"),
        (f'<alert xmlns="{MSG_NS}"/>'.encode(), "expected one of RequestResource"),
        (
            _document("", root="RequestResource").replace(
                b"<MessageContentType>RequestResource", b"<MessageContentType>CommitResource"
            ),
            "MessageContentType is 'CommitResource'",
        ),
        (
            _document(
                "<OriginatingMessageID>m0</OriginatingMessageID>"
                "<ContactInformation><rm:ContactRole>Owner</rm:ContactRole></ContactInformation>"
                "<ResourceInformation><ResourceInfoElementID>1</ResourceInfoElementID>"
                "<ResponseInformation><rm:PrecedingResourceInfoElementID>1</rm:PrecedingResourceInfoElementID>"
                "<rm:ResponseType>Accept</rm:ResponseType></ResponseInformation></ResourceInformation>"
            ),
            "a CommitResource needs a PrecedingMessageID",
        ),
        (
            _document("").replace(b"+08:00", b""),
            "has no time zone offset",
        ),
        (b"<not xml", "not well-formed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>',
            "DTD",
        ),
        (
            _document(
                "<OriginatingMessageID>m0</OriginatingMessageID><OriginatingMessageID>m9</OriginatingMessageID>"
            ),
            "appears more than once",
        ),
    ],
)
def test_hostile_or_broken_documents_are_refused(document: bytes, words: str) -> None:
    with pytest.raises(RmError, match=words) as caught:
        parse_rm(document)
    assert isinstance(caught.value, ContractError)


def test_the_size_cap_comes_before_parsing() -> None:
    with pytest.raises(RmError, match="more than the limit of 1000 bytes"):
        parse_rm(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)


def test_the_indented_sample_request_reads_as_the_sample_request() -> None:
    samples = Path(__file__).resolve().parents[1] / "samples" / "mutual_aid"
    message = parse_rm((samples / "rm-request-resource.xml").read_bytes())
    request = AidRequest.model_validate_json((samples / "aid-request.json").read_bytes())
    assert message.incident_id == str(request.incident_id)
    assert lines_from_rm(message) == request.lines
