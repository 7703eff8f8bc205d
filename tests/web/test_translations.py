"""The English catalogue covers every string marked for translation, as the source stands now.

These tests only read files: they extract messages from the source with babel (using the
project's babel.cfg) and compare them with web/translations. They do not import the app.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATIONS = ROOT / "web" / "translations"
LOCALES = ("en", "zh_CN")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

REFRESH_HINT = """\
Refresh the catalogues from the project root, translate the new entries in
web/translations/en/LC_MESSAGES/messages.po, then compile:

  .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext \\
      -o web/translations/messages.pot .
  .venv/bin/pybabel update -i web/translations/messages.pot -d web/translations \\
      --no-fuzzy-matching
  .venv/bin/pybabel compile -d web/translations
"""

# printf-style conversions as Python's % operator reads them; "%%" is a literal percent sign.
PLACEHOLDER = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<type>[a-zA-Z%])"
)


def _extract() -> Catalog:
    """Extract the marked strings from the current source, as `pybabel extract` would."""
    with BABEL_CFG.open(encoding="utf-8") as fileobj:
        method_map, options_map = parse_mapping_cfg(fileobj, str(BABEL_CFG))
    catalog = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _read(locale: str) -> Catalog:
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fileobj:
        return read_po(fileobj, locale=locale)


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [text for text in value if text is not None]


def _placeholders(text: str) -> Counter[str]:
    return Counter(
        f"%({match['name']}){match['type']}" if match["name"] is not None else f"%{match['type']}"
        for match in PLACEHOLDER.finditer(text)
        if match["type"] != "%"
    )


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    catalog = _extract()
    assert len([m for m in catalog if m.id]) > 0, "extraction found no messages; check babel.cfg"
    return catalog


@pytest.fixture(scope="module")
def english() -> Catalog:
    return _read("en")


def test_every_marked_string_has_an_english_translation(extracted: Catalog, english: Catalog) -> None:
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = english.get(message.id, message.context)
        strings = _texts(translated.string) if translated is not None else []
        if translated is None or not strings or not all(s.strip() for s in strings):
            where = ", ".join(f"{f}:{n}" for f, n in message.locations)
            missing.append(f"  {_key(message.id)!r}  ({where})")
    assert not missing, (
        f"{len(missing)} message(s) lack an English translation:\n"
        + "\n".join(missing)
        + "\n\n"
        + REFRESH_HINT
    )


def test_english_catalogue_has_no_fuzzy_entries(english: Catalog) -> None:
    fuzzy = [_key(m.id) for m in english if m.id and m.fuzzy]
    assert not fuzzy, (
        "fuzzy entries in the English catalogue (check the translation, then remove the "
        f"'#, fuzzy' line): {fuzzy}"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders(locale: str) -> None:
    wrong = []
    for message in _read(locale):
        if not message.id:
            continue
        ids = _texts(message.id)
        expected = _placeholders(ids[-1] if len(ids) > 1 else ids[0])
        for string in _texts(message.string):
            if string and _placeholders(string) != expected:
                found = sorted(_placeholders(string).elements())
                wrong.append(
                    f"  {_key(message.id)!r} -> {string!r}: "
                    f"expected {sorted(expected.elements())}, found {found}"
                )
    assert not wrong, f"placeholders differ in the {locale} catalogue:\n" + "\n".join(wrong)
