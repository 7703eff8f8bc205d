"""The JSON Schema files in contracts/schemas stay in step with the models."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.schemas import SCHEMA_DIR, SCHEMAS, render_schemas, schema_path, write_schemas


def test_schema_files_match_the_models() -> None:
    stale = [
        name
        for name, text in render_schemas().items()
        if not schema_path(name).is_file() or schema_path(name).read_text("utf-8") != text
    ]
    assert not stale, f"schemas out of date: {stale}; run `python -m contracts.schemas`"


def test_no_schema_file_without_a_model() -> None:
    names = {path.name.removesuffix(".schema.json") for path in SCHEMA_DIR.glob("*.schema.json")}
    assert names == set(SCHEMAS), "remove the files of models no longer registered"


def test_write_schemas_writes_sorted_json_with_a_final_newline(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert len(written) == len(SCHEMAS)
    for path in written:
        text = path.read_text("utf-8")
        assert text.endswith("}\n")
        assert json.dumps(json.loads(text), ensure_ascii=False, indent=2, sort_keys=True) + "\n" == text


def test_level_is_a_roman_numeral_in_the_schema() -> None:
    schema = json.loads(render_schemas()["incident-report"])
    assert schema["properties"]["level"]["enum"] == ["I", "II", "III", "IV"]
    assert schema["additionalProperties"] is False
