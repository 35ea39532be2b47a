"""`validate --strict`: the file's warnings fail it, for a CI job to refuse them."""

from __future__ import annotations

from pathlib import Path

import pytest

from genea_automate.cli import main

RULES = """\
endpoints:
  main: {{secret: {secret}}}
rules:
  - id: a
    when: {kind}
    then: [{{log: {{message: hi}}}}]
"""
KIND_WARNING = (
    "5:11: warning: rules[0].when.event[0]: no known event kind matches "
    "'access.grnted' (did you mean 'access.granted'?); the kinds are listed in "
    "docs/events.md"
)
UNSET_WARNING = (
    "2:18: warning: endpoints.main.secret: environment variable UNSET_STRICT_SECRET "
    "is not set; a placeholder stands in for it here, as this command sends "
    "nothing, but `serve` refuses to start until it is set"
)


def validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, **values: str
) -> tuple[int, str, list[str]]:
    """Exit status, summary line and warnings of validate on RULES with `values`."""
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.format(**values))
    status = main(["validate", "-c", str(path), *args])
    captured = capsys.readouterr()
    warnings = [line.removeprefix(f"{path}:") for line in captured.err.splitlines()]
    return status, captured.out.removeprefix(f"{path}: "), warnings


def test_validate_strict_refuses_a_warning_about_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, capsys, "--strict", secret="s", kind="access.grnted") == (
        1,
        "1 rule(s), 1 warning(s), 1 refused by --strict\n",
        [KIND_WARNING],
    )


def test_validate_without_strict_passes_the_same_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, capsys, secret="s", kind="access.grnted") == (
        0,
        "OK, 1 rule(s), 1 warning(s)\n",
        [KIND_WARNING],
    )


def test_validate_strict_passes_a_file_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(
        tmp_path, capsys, "--strict", secret="s", kind="access.granted"
    ) == (0, "OK, 1 rule(s), 0 warning(s)\n", [])


def test_validate_strict_lets_unset_variables_pass_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI runs without the daemon's secrets: that is no fault of the file.
    monkeypatch.delenv("UNSET_STRICT_SECRET", raising=False)
    secret = "'${UNSET_STRICT_SECRET}'"
    assert validate(
        tmp_path, capsys, "--strict", secret=secret, kind="access.granted"
    ) == (0, "OK, 1 rule(s), 1 warning(s)\n", [UNSET_WARNING])
    assert validate(
        tmp_path, capsys, "--strict", secret=secret, kind="access.grnted"
    ) == (
        1,
        "1 rule(s), 2 warning(s), 1 refused by --strict\n",
        [UNSET_WARNING, KIND_WARNING],
    )
