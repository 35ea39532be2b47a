"""docs/events.md is generated from the kinds table and must stay in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from genea_automate.events.docs import DOCS_PATH, FIELD_NOTES, field_paths, main, render
from genea_automate.events.kinds import FAMILIES, KNOWN_KINDS


def test_docs_file_matches_the_generator() -> None:
    regenerate = "python -m genea_automate.events.docs --write"
    assert DOCS_PATH.read_text(encoding="utf-8") == render(), (
        f"docs/events.md is stale; run `{regenerate}`"
    )


def test_docs_describe_every_event_field() -> None:
    assert [path for path, _ in field_paths()] == list(FIELD_NOTES)


def test_docs_have_a_section_for_every_known_kind() -> None:
    page = render()
    missing = [
        kind
        for kind in KNOWN_KINDS
        if f"### {kind}\n" not in page and f"`{kind}`, category" not in page
    ]
    assert missing == []


def test_docs_list_every_family() -> None:
    page = render()
    assert all(f"`{family.pattern}`" in page for family in FAMILIES)


def test_docs_never_show_a_full_card_number() -> None:
    page = render()
    assert "90017734" in page  # in the sample payload, as Genea sends it
    assert page.count("90017734") == 1
    assert "****7734" in page


def test_docs_main_writes_the_page(tmp_path: Path) -> None:
    target = tmp_path / "events.md"
    assert main(["--write", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render()


def test_docs_main_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render()
