"""MSEL import and export: CSV and JSON round trips, and every refusal naming its row and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.drills import DrillContext, DrillPlan, ExpectedAction, InjectChannel, Msel, MselProblem
from contracts.errors import ContractError
from contracts.msel import (
    COLUMNS,
    MAX_PROBLEMS,
    decode_msel_csv,
    decode_msel_json,
    encode_msel_csv,
    encode_msel_json,
    format_duration,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "samples" / "drills"
CITIES = json.loads((ROOT / "hub" / "data" / "huaihai_cities.json").read_text("utf-8"))["cities"]
# What the hub builds from its cities table: full and short Chinese names to slugs.
ALIASES = {city["name_zh"]: city["slug"] for city in CITIES} | {
    city["name_zh"].removesuffix("市"): city["slug"] for city in CITIES
}

HEADER = "number,offset,city,channel,message,expected_action,expected_within,objective,contingency_of"
GOOD_ROWS = [
    "1,0:00:00,xuzhou,desk_notice,演练开始,notice_read,300,O1,",
    "2,0:10:00,suqian,bulletin,请签收,receipt_signed,900,O1,",
    "3,0:20:00,linyi,desk_notice,请报送水位,report_filed,1200,O1,",
    "4,0:30:00,suqian,desk_notice,请求支援,aid_requested,1800,O2,",
    "5,0:50:00,suqian,desk_notice,提示：请提出支援请求,aid_requested,900,O2,4",
]


@pytest.fixture
def plan() -> DrillPlan:
    return DrillPlan.model_validate_json((SAMPLES / "flood-tabletop.plan.json").read_bytes())


@pytest.fixture
def context(plan: DrillPlan) -> DrillContext:
    return DrillContext.of_plan(plan, member_cities={c["slug"] for c in CITIES}, city_aliases=ALIASES)


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8")


def refusal(decode: Any, raw: bytes | str, context: DrillContext) -> list[MselProblem]:
    with pytest.raises(ContractError) as caught:
        decode(raw, context)
    problems = list(caught.value.problems)
    assert problems and all(isinstance(p, MselProblem) for p in problems)
    return problems  # type: ignore[return-value]  # checked just above


def codes(problems: list[MselProblem]) -> set[tuple[int | None, str, str]]:
    return {(p.row, p.field, p.code) for p in problems}


# Reading and round trips ---------------------------------------------------------------------


def test_sample_spreadsheet_with_bom_and_chinese_headers_reads(context: DrillContext) -> None:
    msel = decode_msel_csv((SAMPLES / "flood-tabletop.msel.csv").read_bytes(), context)
    by_number = msel.by_number()
    assert len(by_number) == 7
    first = by_number[1]
    assert first.city == "xuzhou"  # "徐州市" through the aliases
    assert first.role == "值班员"
    assert first.channel is InjectChannel.DESK_NOTICE  # "值班通知"
    assert first.expected_action is ExpectedAction.NOTICE_READ  # "阅知"
    assert first.expected_within_s == 300  # the header's "（秒）" is a unit, not a different column
    assert by_number[5].contingency_of == 4
    assert by_number[6].vehicle == "xz-cmd-01"
    assert by_number[6].offset_s == 3600
    assert by_number[7].message == "连云港市发布暴雨橙色预警,请相关城市关注。"


@pytest.mark.parametrize("headers", ["en", "zh"])
def test_csv_export_then_import_round_trips(context: DrillContext, headers: Any) -> None:
    msel = decode_msel_csv((SAMPLES / "flood-tabletop.msel.csv").read_bytes(), context)
    exported = encode_msel_csv(msel, headers=headers)
    assert exported.startswith(b"\xef\xbb\xbf")  # so Excel opens it as UTF-8
    assert decode_msel_csv(exported, context) == msel
    assert decode_msel_csv(exported.decode("utf-8-sig"), context) == msel


def test_json_export_then_import_round_trips(context: DrillContext) -> None:
    msel = decode_msel_csv((SAMPLES / "flood-tabletop.msel.csv").read_bytes(), context)
    exported = encode_msel_json(msel)
    assert "骆马湖" in exported.decode("utf-8")
    assert decode_msel_json(exported, context) == msel
    assert decode_msel_json(b"\xef\xbb\xbf" + exported, context) == msel


def test_csv_and_json_carry_the_same_msel(context: DrillContext) -> None:
    msel = decode_msel_csv(csv_of(*GOOD_ROWS), context)
    assert decode_msel_json(encode_msel_json(msel), context) == decode_msel_csv(
        encode_msel_csv(msel), context
    )


def test_english_export_writes_codes_and_every_column(context: DrillContext) -> None:
    msel = decode_msel_csv(csv_of(*GOOD_ROWS), context)
    lines = encode_msel_csv(msel).decode("utf-8-sig").splitlines()
    assert lines[0].split(",") == [column.name for column in COLUMNS]
    assert lines[2].startswith("2,0:10:00,suqian,,,,bulletin,请签收,receipt_signed,0:15:00,O1,")


def test_formula_like_text_is_defused_in_export_and_restored_on_import(context: DrillContext) -> None:
    rows = [
        '1,0:00:00,xuzhou,desk_notice,\'=HYPERLINK("http://x"),,,,',
        "2,0:01:00,xuzhou,desk_notice,'hello,,,,",
        "3,0:02:00,xuzhou,desk_notice,-5 ℃ 冰冻,,,,",
    ]
    msel = decode_msel_csv(csv_of(*rows), context)
    assert [i.message for i in msel.injects] == ['=HYPERLINK("http://x")', "'hello", "-5 ℃ 冰冻"]
    exported = encode_msel_csv(msel).decode("utf-8-sig")
    assert '"\'=HYPERLINK(""http://x"")"' in exported
    assert ",'-5 ℃ 冰冻," in exported
    assert decode_msel_csv(exported, context) == msel


def test_blank_rows_are_skipped_but_still_counted(context: DrillContext) -> None:
    raw = csv_of(GOOD_ROWS[0], "", ",,,,,,,,", "2,0:10:00,xuzhou,fax,m,,,,")
    problems = refusal(decode_msel_csv, raw, context)
    assert codes(problems) == {(5, "channel", "unknown_channel")}


def test_columns_in_any_order_and_case(context: DrillContext) -> None:
    raw = csv_of("请签收,SUQIAN_IS_WRONG,2,600,bulletin", header="Message,City,NUMBER,Offset,Channel")
    problems = refusal(decode_msel_csv, raw, context)
    assert codes(problems) == {(2, "city", "string_pattern_mismatch")}
    good = decode_msel_csv(
        csv_of("请签收,suqian,2,600,bulletin", header="Message,City,NUMBER,Offset,Channel"), context
    )
    assert good.injects[0].offset_s == 600


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("600", 600), ("0:10:00", 600), ("1:30:05", 5405), ("49:00:00", 176400)]
)
def test_durations_read(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["10:00", "-5", "1.5", "1:60:00", "T+0:10", "", "０:10:00", "１０"])
def test_ambiguous_or_malformed_durations_are_refused(text: str) -> None:
    assert parse_duration(text) is None


# CSV refusals --------------------------------------------------------------------------------


def test_unknown_channel_names_row_and_field(context: DrillContext) -> None:
    rows = [*GOOD_ROWS]
    rows.insert(5, "7,1:00:00,xuzhou,fax,请传真,,,,")
    problems = refusal(decode_msel_csv, csv_of(*rows), context)
    (problem,) = problems
    assert (problem.row, problem.field, problem.code) == (7, "channel", "unknown_channel")
    assert problem.params_dict["value"] == "fax"
    assert str(problem) == "row 7, channel: unknown channel 'fax'"


def test_error_message_lists_the_problems(context: DrillContext) -> None:
    with pytest.raises(ContractError, match=r"invalid MSEL CSV: row 2, channel: unknown channel 'fax'"):
        decode_msel_csv(csv_of("1,0:00:00,xuzhou,fax,m,,,,"), context)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("1,0:00:00,heze,desk_notice,m,,,,", (2, "city", "unknown_target_city")),
        ("1,0:00:00,南京市,desk_notice,m,,,,", (2, "city", "string_pattern_mismatch")),
        ("1,10:00,xuzhou,desk_notice,m,,,,", (2, "offset", "bad_offset")),
        ("1,-0:05:00,xuzhou,desk_notice,m,,,,", (2, "offset", "bad_offset")),
        ("1,3:00:01,xuzhou,desk_notice,m,,,,", (2, "offset", "offset_after_endex")),
        ("1,0:00:00,xuzhou,desk_notice,m,notice_read,soon,,", (2, "expected_within", "bad_duration")),
        ("1,0:00:00,xuzhou,desk_notice,m,notice_read,,,", (2, "expected_within", "incomplete_expectation")),
        ("1,0:00:00,xuzhou,desk_notice,m,salute,60,,", (2, "expected_action", "unknown_expected_action")),
        ("1,0:00:00,xuzhou,desk_notice,m,,,O7,", (2, "objective", "unknown_objective")),
        ("one,0:00:00,xuzhou,desk_notice,m,,,,", (2, "number", "not_a_number")),
        ("1,0:00:00,xuzhou,desk_notice,,,,,", (2, "message", "missing")),
        ("1,0:00:00,xuzhou,desk_notice,m,,,,1", (2, "contingency_of", "contingency_of_itself")),
        ("1,0:00:00,xuzhou,desk_notice,m,,,,x", (2, "contingency_of", "not_a_number")),
        ("1,0:00:00,xuzhou,mqtt_vehicle,m,,,,", (2, "vehicle", "vehicle_required")),
        ("1,0:00:00,xuzhou,desk_notice,m,,,,,extra", (2, "", "too_many_cells")),
    ],
)
def test_csv_row_refusals(context: DrillContext, row: str, expected: tuple[int, str, str]) -> None:
    assert expected in codes(refusal(decode_msel_csv, csv_of(row), context))


def test_duplicate_inject_number_names_both_rows(context: DrillContext) -> None:
    rows = [*GOOD_ROWS, "3,1:00:00,xuzhou,desk_notice,又一个 3 号,,,,"]
    (problem,) = refusal(decode_msel_csv, csv_of(*rows), context)
    assert (problem.row, problem.field, problem.code) == (7, "number", "duplicate_number")
    assert problem.params_dict == {"number": "3", "first_row": "4"}


def test_orphan_contingency_and_contingency_before_parent(context: DrillContext) -> None:
    rows = [GOOD_ROWS[0], "2,0:10:00,xuzhou,desk_notice,m,,,,9", "3,0:00:00,xuzhou,desk_notice,m,,,,2"]
    rows.insert(1, "4,0:20:00,xuzhou,desk_notice,m,,,,")
    rows[3] = "3,0:05:00,xuzhou,desk_notice,m,,,,4"
    assert codes(refusal(decode_msel_csv, csv_of(*rows), context)) == {
        (4, "contingency_of", "unknown_contingency_parent"),
        (5, "offset", "contingency_before_parent"),
    }


def test_a_contingency_of_a_failed_row_is_reported_once(context: DrillContext) -> None:
    rows = ["1,0:00:00,xuzhou,fax,m,,,,", "2,0:10:00,xuzhou,desk_notice,m,,,,1"]
    assert codes(refusal(decode_msel_csv, csv_of(*rows), context)) == {(2, "channel", "unknown_channel")}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("number,offset,city,message", (1, "channel", "missing_column")),
        ("number,offset,city,channel,message,priority", (1, "priority", "unknown_column")),
        ("number,offset,city,channel,message,渠道", (1, "渠道", "duplicate_column")),
        ("number,offset,目标,channel,message", (1, "目标", "unknown_column")),
    ],
)
def test_header_refusals(context: DrillContext, header: str, expected: tuple[int, str, str]) -> None:
    raw = csv_of("1,0:00:00,xuzhou,desk_notice,m", header=header)
    assert expected in codes(refusal(decode_msel_csv, raw, context))


def test_every_problem_of_a_file_is_reported_at_once(context: DrillContext) -> None:
    rows = [
        "1,0:00:00,heze,fax,m,,,,",
        "1,xx,xuzhou,desk_notice,m,,,,",
        "2,0:00:00,xuzhou,desk_notice,m,,,O9,",
    ]
    assert codes(refusal(decode_msel_csv, csv_of(*rows), context)) == {
        (2, "city", "unknown_target_city"),
        (2, "channel", "unknown_channel"),
        (3, "offset", "bad_offset"),
        (4, "objective", "unknown_objective"),
    }


def test_a_file_wrong_on_every_row_lists_a_bounded_number_of_problems(context: DrillContext) -> None:
    rows = [f"{n},0:00:00,xuzhou,fax,m,,,," for n in range(1, 200)]
    problems = refusal(decode_msel_csv, csv_of(*rows), context)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].code == "more_problems"
    assert problems[-1].params_dict == {"count": str(199 - MAX_PROBLEMS)}


def test_oversized_file_is_refused_before_it_is_read(context: DrillContext) -> None:
    raw = csv_of(*GOOD_ROWS) + b"," * 2000
    (problem,) = refusal(lambda data, ctx: decode_msel_csv(data, ctx, max_bytes=1000), raw, context)
    assert (problem.row, problem.code) == (None, "too_large")
    (problem,) = refusal(decode_msel_csv, b"x" * 1_000_001, context)
    assert problem.code == "too_large"


def test_gbk_spreadsheet_is_refused_with_the_row_and_a_hint(context: DrillContext) -> None:
    raw = (HEADER + "\r\n" + GOOD_ROWS[0] + "\r\n").encode("gbk")
    (problem,) = refusal(decode_msel_csv, raw, context)
    assert (problem.row, problem.code) == (2, "not_utf8")
    assert "CSV UTF-8" in problem.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", (1, "", "no_header")),
        (b"\xef\xbb\xbf\r\n", (1, "", "no_header")),
        (HEADER.encode() + b'\r\n1,0:00:00,xuzhou,desk_notice,"unclosed\r\n', (2, "", "malformed_csv")),
        (HEADER.encode() + b'\r\n1,0:00:00,xuzhou,desk_notice,"a"b,,,,\r\n', (2, "", "malformed_csv")),
        (
            HEADER.encode() + b"\r\n1,0:00:00,xuzhou,desk_notice,a\x00b,,,,\r\n",
            (2, "message", "control_character"),
        ),
    ],
)
def test_malformed_csv_is_refused(context: DrillContext, raw: bytes, expected: tuple[int, str, str]) -> None:
    assert expected in codes(refusal(decode_msel_csv, raw, context))


def test_multi_line_cells_count_as_one_row(context: DrillContext) -> None:
    raw = csv_of('1,0:00:00,xuzhou,desk_notice,"第一行\n第二行",,,,', "2,0:00:00,xuzhou,fax,m,,,,")
    assert codes(refusal(decode_msel_csv, raw, context)) == {(3, "channel", "unknown_channel")}


def test_too_many_injects_is_refused(context: DrillContext) -> None:
    rows = [f"{n},0:00:00,xuzhou,desk_notice,m,,,," for n in range(1, 2002)]
    problems = refusal(decode_msel_csv, csv_of(*rows), context)
    assert (2002, "", "too_many_injects") in codes(problems)


# JSON refusals -------------------------------------------------------------------------------


def json_of(*injects: dict[str, Any], **envelope: Any) -> bytes:
    return json.dumps(
        {"schema_version": 1, "injects": list(injects), **envelope}, ensure_ascii=False
    ).encode()


def inject(**fields: Any) -> dict[str, Any]:
    return {"number": 1, "offset_s": 0, "city": "xuzhou", "channel": "desk_notice", "message": "m"} | fields


def test_json_unknown_channel_names_position_and_field(context: DrillContext) -> None:
    raw = json_of(inject(), inject(number=2), inject(number=3, channel="fax"))
    (problem,) = refusal(decode_msel_json, raw, context)
    assert (problem.row, problem.field, problem.code) == (3, "channel", "unknown_channel")
    assert str(problem) == "injects[2].channel: unknown channel 'fax'"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (inject(city="heze"), (1, "city", "unknown_target_city")),
        (inject(offset_s="0:10:00"), (1, "offset_s", "int_type")),
        (inject(offset_s=-60), (1, "offset_s", "greater_than_equal")),
        (inject(offset_s=99_999), (1, "offset_s", "offset_after_endex")),
        (inject(number="1"), (1, "number", "int_type")),
        (inject(fax="0516-1234"), (1, "fax", "unknown_field")),
        ({"number": 1, "offset_s": 0, "city": "xuzhou", "message": "m"}, (1, "channel", "missing")),
        ([1, 2], (1, "", "model_type")),
        (inject(channel="mqtt_vehicle"), (1, "vehicle", "vehicle_required")),
    ],
)
def test_json_inject_refusals(context: DrillContext, item: Any, expected: tuple[int, str, str]) -> None:
    assert expected in codes(refusal(decode_msel_json, json_of(item), context))


def test_json_duplicate_numbers_and_orphans(context: DrillContext) -> None:
    raw = json_of(inject(), inject(), inject(number=2, contingency_of=5))
    problems = refusal(decode_msel_json, raw, context)
    assert codes(problems) == {
        (2, "number", "duplicate_number"),
        (3, "contingency_of", "unknown_contingency_parent"),
    }
    assert {p.location for p in problems} == {"injects[1].number", "injects[2].contingency_of"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"schema_version": 1, "injects": [', (None, "", "malformed_json")),
        (b'{"schema_version": 1, "injects": [], "injects": []}', (None, "", "malformed_json")),
        (b"[]", (None, "", "not_an_object")),
        (b'{"schema_version": 2, "injects": []}', (None, "schema_version", "unsupported_schema_version")),
        (b'{"schema_version": true, "injects": []}', (None, "schema_version", "unsupported_schema_version")),
        (b'{"schema_version": 1}', (None, "injects", "missing")),
        (b'{"schema_version": 1, "injects": {}}', (None, "injects", "missing")),
        (b'{"schema_version": 1, "injects": [], "drill": 3}', (None, "drill", "unknown_field")),
        (b'\xff{"schema_version": 1}', (1, "", "not_utf8")),
    ],
)
def test_malformed_json_is_refused(context: DrillContext, raw: bytes, expected: tuple[Any, str, str]) -> None:
    assert expected in codes(refusal(decode_msel_json, raw, context))


def test_malformed_json_names_line_and_column(context: DrillContext) -> None:
    (problem,) = refusal(decode_msel_json, b'{\n  "schema_version": 1,\n  "injects": [,]\n}', context)
    assert problem.location == "line 3, column 15"
    assert problem.params_dict == {"line": "3", "column": "15"}


def test_json_too_many_or_too_large(context: DrillContext) -> None:
    many = json_of(*[inject(number=n) for n in range(1, 2002)])
    assert (None, "injects", "too_many_injects") in codes(refusal(decode_msel_json, many, context))
    (problem,) = refusal(decode_msel_json, b" " * 1_000_001, context)
    assert problem.code == "too_large"


def test_empty_msel_is_an_msel(context: DrillContext) -> None:
    assert decode_msel_json(json_of(), context) == Msel(injects=())
    assert decode_msel_csv(csv_of(), context) == Msel(injects=())
