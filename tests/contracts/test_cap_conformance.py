"""Real CAP documents survive parse, build and parse; hostile or broken ones are refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from contracts.cap import CAP12_NS, XMLDSIG_NS, CapError, build_cap, parse_cap

CAP_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "cap-samples"
DATETIMES = {"sent", "effective", "onset", "expires"}
# Real documents that break a rule CAP 1.2 states, and the words of their refusal (docs/CAP.md).
BREAKS_THE_SPEC = {
    "germany-dwd-thunderstorm-update.xml": (
        "info[0].area[0].polygon[0]: Value error, a polygon needs at least 4 coordinate pairs"
    ),
}


def _samples() -> list[Path]:
    """List the corpus documents; the corpus is part of the repository, so it is never absent."""
    return sorted(CAP_SAMPLES.glob("*.xml"))


def _version(path: Path) -> str:
    """Return the CAP version a corpus document declares."""
    return "1.1" if b"emergency:cap:1.1" in path.read_bytes() else "1.2"


def _valid_cap12() -> list[Path]:
    """List the CAP 1.2 documents that keep every rule of the spec."""
    return [p for p in _samples() if _version(p) == "1.2" and p.name not in BREAKS_THE_SPEC]


def _leaves(element: Element, path: str) -> Iterator[tuple[str, str]]:
    """Yield (path, whitespace-collapsed text) for every non-empty CAP leaf element."""
    seen: Counter[str] = Counter()
    for child in element:
        if child.tag.startswith(f"{{{XMLDSIG_NS}}}"):
            continue
        local = child.tag.removeprefix(f"{{{CAP12_NS}}}")
        if len(child):
            child_path = f"{path}/{local}[{seen[local]}]"
            seen[local] += 1
            yield from _leaves(child, child_path)
            if local == "info" and child.find(f"{{{CAP12_NS}}}language") is None:
                yield f"{child_path}/language", "en-US"
        elif text := " ".join((child.text or "").split()):
            if local in DATETIMES:
                # CAP writes UTC as -00:00 (CAP 1.2, 3.3.2); +00:00 is the same instant.
                text = text.replace("+00:00", "-00:00")
            yield f"{path}/{local}", text


@pytest.mark.parametrize("path", _valid_cap12(), ids=lambda p: p.name)
def test_cap12_document_survives_build_then_parse(path: Path) -> None:
    alert = parse_cap(path.read_bytes())
    rebuilt = build_cap(alert)
    assert rebuilt.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<alert ')
    assert parse_cap(rebuilt) == alert


@pytest.mark.parametrize("path", _valid_cap12(), ids=lambda p: p.name)
def test_cap12_document_keeps_every_value(path: Path) -> None:
    # Independent of the models: every leaf value of the original is in the rebuilt document,
    # under the same info and area, with whitespace collapsed and elements in schema order.
    original = Counter(_leaves(fromstring(path.read_bytes()), "alert"))
    rebuilt = Counter(_leaves(fromstring(build_cap(parse_cap(path.read_bytes()))), "alert"))
    assert rebuilt == original


@pytest.mark.parametrize("path", [p for p in _samples() if _version(p) == "1.1"], ids=lambda p: p.name)
def test_cap11_document_is_refused_with_the_reason(path: Path) -> None:
    with pytest.raises(CapError, match=r"^CAP 1\.1 is not accepted; send CAP 1\.2"):
        parse_cap(path.read_bytes())


@pytest.mark.parametrize(("name", "words"), BREAKS_THE_SPEC.items())
def test_cap12_document_that_breaks_the_spec_is_refused_with_the_rule(name: str, words: str) -> None:
    with pytest.raises(CapError) as caught:
        parse_cap((CAP_SAMPLES / name).read_bytes())
    assert words in str(caught.value)


def test_corpus_has_both_versions() -> None:
    assert {_version(p) for p in _samples()} == {"1.1", "1.2"}
    assert len(_valid_cap12()) >= 12


def test_real_documents_keep_the_structural_rules() -> None:
    # Traccar's habit: whatever the codec accepts from real senders meets the invariants.
    for path in _valid_cap12():
        alert = parse_cap(path.read_bytes())
        for info in alert.infos:
            for area in info.areas:
                for polygon in area.polygons:
                    pairs = polygon.split(" ")
                    assert len(pairs) >= 4 and pairs[0] == pairs[-1], path.name
                for circle in area.circles:
                    assert float(circle.split(" ")[1]) >= 0, path.name
        assert len(alert.referenced()) == (1 if alert.references else 0), path.name


def test_signature_is_kept_after_the_last_info() -> None:
    alert = parse_cap((CAP_SAMPLES / "us-ntwc-tsunami-information-signed.xml").read_bytes())
    assert len(alert.signatures) == 1
    root = fromstring(build_cap(alert))
    assert root[-1].tag == f"{{{XMLDSIG_NS}}}Signature"
    assert root[-2].tag == f"{{{CAP12_NS}}}info"


def test_carriage_return_survives_as_a_reference() -> None:
    alert = parse_cap((CAP_SAMPLES / "myanmar-dmh-flood-multiarea.xml").read_bytes())
    assert any("\r" in (info.instruction or "") for info in alert.infos)
    assert b"&#13;" in build_cap(alert)


def test_prefixed_namespace_and_defaults_are_read() -> None:
    alert = parse_cap((CAP_SAMPLES / "maldives-meteorology-tsunami-multilanguage.xml").read_bytes())
    assert [info.language for info in alert.infos] == ["dv", "en-US"]


def test_chinese_alert_is_read() -> None:
    alert = parse_cap((CAP_SAMPLES / "macao-smg-monsoon-signal-cancelled.xml").read_bytes())
    assert alert.infos[0].event == "強烈季候風信號"
    assert alert.sent.isoformat() == "2025-04-13T05:52:12+08:00"
