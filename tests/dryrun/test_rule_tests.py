"""`test`: rule-test files, their failures in words, and the example's own tests."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from genea_automate.cli import main
from genea_automate.dryrun.testfile import set_path
from genea_automate.dryrun.testrun import mismatch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the example rules and their sample events."""
    shutil.copy(REPO / "rules.example.yaml", tmp_path)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_example_rules_pass_their_own_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["test", "-c", str(REPO / "rules.example.yaml")]) == 0
    assert capsys.readouterr().out == "5 test(s) passed, 0 failed\n"


def test_the_example_tests_cover_every_example_rule() -> None:
    tests = (REPO / "rules.example.tests.yaml").read_text()
    rules = (REPO / "rules.example.yaml").read_text()
    ids = [
        line.split("id:")[1].strip()
        for line in rules.splitlines()
        if line.strip().startswith("- id:")
    ]
    assert ids and all(f"fires: [{rule_id}" in tests for rule_id in ids)


def test_a_firing_that_does_not_happen_names_rule_event_and_condition(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        folder,
        "coffee.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: the second badge
            events:
              - time: 2025-03-03T08:58:11-05:00
              - name: Sam
                time: 2025-03-03T09:10:00-05:00
                set: {actor.user_name: Sam Example, actor.user_uuid: sam}
                expect: {fires: [morning-coffee]}
    """,
    )
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 1
    assert capsys.readouterr().out == (
        f"FAIL {path}:6: the second badge: event 2 'Sam' (examples/access-granted.json"
        " at 2025-03-03T09:10:00-05:00): expected rule morning-coffee to fire, but "
        "the condition first_arrival said no: not the first: Jordan Example arrived "
        "08:58 local on 2025-03-03\n"
        "0 test(s) passed, 1 failed\n"
    )


def test_a_disabled_rule_that_is_expected_to_fire_is_named_disabled(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = folder / "rules.example.yaml"
    rules.write_text(
        rules.read_text().replace(
            "  - id: morning-coffee\n", "  - id: morning-coffee\n    enabled: false\n"
        )
    )
    write(
        folder,
        "coffee.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: coffee
            events: [{expect: {fires: [morning-coffee]}}]
    """,
    )
    assert main(["test", "-c", str(rules)]) == 1
    [failure, summary] = capsys.readouterr().out.splitlines()
    assert failure.endswith(
        "expected rule morning-coffee to fire, but the rule is disabled "
        "(`enabled: false`)"
    )
    assert summary == "0 test(s) passed, 1 failed"


def test_failures_say_what_was_wrong_with_an_action_or_a_firing(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        folder,
        "coffee.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: coffee
            events:
              - time: 2025-03-03T08:58:11-05:00
                expect:
                  does_not_fire: [morning-coffee]
                  actions:
                    - {rule: morning-coffee, mqtt: {payload: "OFF"}}
                    - {rule: morning-coffee, slack: {text: {contains: Sam}}}
                    - {rule: morning-coffee, step: 1, mqtt: {topic: a}}
    """,
    )
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 1
    failures = [
        line.split("-05:00): ", 1)[1]
        for line in capsys.readouterr().out.splitlines()[:-1]
    ]
    assert failures == [
        "expected rule morning-coffee not to fire, but it fired",
        "rule morning-coffee queued no mqtt action like the one expected: step 0: "
        'mqtt.payload is "ON", expected "OFF"',
        "rule morning-coffee queued no slack action like the one expected: step 1: "
        "slack.text 'Coffee is on: Jordan Example is first in at Harborview Labs HQ.'"
        " does not contain 'Sam'",
        "expected rule morning-coffee to queue a mqtt action at step 1; it queued "
        "step 0 mqtt, step 1 slack",
    ]


def test_unknown_rules_and_actions_are_refused_like_config_errors(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        folder,
        "typo.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: typos
            events:
              - expect:
                  fires: [morning-cofee]
                  actions: [{rule: morning-coffee, mqt: {topic: a}}]
    """,
    )
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 1
    assert capsys.readouterr() == (
        "",
        f"{path}:6:19: error: tests[0].events[0].expect.fires[0]: the rules file has "
        "no rule 'morning-cofee' (did you mean 'morning-coffee'?)\n"
        f"{path}:7:49: error: tests[0].events[0].expect.actions[0].mqt: the rules "
        "file has no action 'mqt' (did you mean 'mqtt'?)\n",
    )


def test_every_unfit_file_is_reported_and_no_test_runs(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        folder,
        "a-runs.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: would fail if it ran
            events: [{expect: {does_not_fire: [morning-coffee]}}]
    """,
    )
    typo = write(
        folder,
        "b-typo.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: typo
            events: [{expect: {fires: [lobby-light]}}]
    """,
    )
    broken = write(
        folder,
        "c-broken.tests.yaml",
        """\
        payload: examples/nope.json
        tests: [{name: no payload, events: [{}]}]
    """,
    )

    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{typo}:4:32: error: tests[0].events[0].expect.fires[0]: the rules file "
        "has no rule 'lobby-light'",
        f"{broken}:2:37: error: tests[0].events[0].payload: no payload file "
        "'examples/nope.json' next to the test file",
    ]


def test_a_missing_payload_file_is_placed_in_the_test_file(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        folder,
        "x.tests.yaml",
        """\
        tests:
          - name: nothing
            events:
              - payload: examples/nope.json
    """,
    )
    assert main(["test", str(path), "-c", str(folder / "rules.example.yaml")]) == 1
    assert capsys.readouterr().err == (
        f"{path}:4:18: error: tests[0].events[0].payload: no payload file "
        "'examples/nope.json' next to the test file\n"
    )


def test_without_test_files_the_command_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(REPO / "rules.example.yaml", tmp_path)
    config = tmp_path / "rules.example.yaml"
    assert main(["test", "-c", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"error: no test files given, and no *.tests.yaml next to {config}\n"
    )


def test_a_copy_of_the_example_rules_does_not_run_the_example_tests(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As README suggests: rules.yaml copied from the example, and changed.
    shutil.copy(REPO / "rules.example.tests.yaml", folder)
    rules = (folder / "rules.example.yaml").read_text()
    config = folder / "rules.yaml"
    config.write_text(rules.replace("id: forced-door-alert", "id: door-alarm"))
    write(
        folder,
        "rules.tests.yaml",
        """\
        payload: examples/door-forced-open.json
        tests:
          - name: a forced door sounds the alarm
            events:
              - expect: {fires: [door-alarm]}
        """,
    )

    assert main(["test", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "1 test(s) passed, 0 failed\n"
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 0
    assert capsys.readouterr().out == "5 test(s) passed, 0 failed\n"


def test_a_reused_payload_gets_a_fresh_uuid_but_a_set_one_is_kept(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        folder,
        "dup.tests.yaml",
        """\
        payload: examples/access-granted.json
        tests:
          - name: same payload twice is two events
            events:
              - expect: {fires: [morning-coffee]}
              - time: 2025-03-04T08:00:00-05:00
                expect: {fires: [morning-coffee]}
          - name: a resent uuid is a duplicate
            events:
              - {}
              - set: {uuid: 67c5b5741a2b3c4d5e6f7081}
    """,
    )
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.endswith(
        "uuid '67c5b5741a2b3c4d5e6f7081' was already decided; set a new uuid\n"
        "1 test(s) passed, 1 failed\n"
    )


@pytest.mark.parametrize(
    ("expected", "actual", "problem"),
    [
        ("ON", "ON", None),
        (1, 1, None),
        ({"contains": "first in"}, "Jordan is first in", None),
        ({"matches": r"^alarm/.+/door_forced$"}, "alarm/HQ/door_forced", None),
        ({"json": {"door": "D"}}, '{"door":"D","time":"t"}', None),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, None),
        ("ON", "OFF", 'p is "OFF", expected "ON"'),
        ({"contains": "x"}, "abc", "p 'abc' does not contain 'x'"),
        ({"matches": "^b"}, "abc", "p 'abc' does not match /^b/"),
        ({"json": {"door": "E"}}, '{"door":"D"}', 'p.door is "D", expected "E"'),
        ({"json": 1}, "not json", "p 'not json' is not JSON"),
        ({"contains": "x"}, 5, "p is 5, not text to test with contains"),
        ({"a": 1}, {"b": 1}, "p.a is missing (the payload has b)"),
        ({"a": 1}, "text", 'p is "text", not a mapping'),
    ],
)
def test_mismatch_matchers(expected: Any, actual: Any, problem: str | None) -> None:
    assert mismatch(expected, actual, "p") == problem


def test_set_path_changes_nested_fields_and_list_items() -> None:
    data: dict[str, Any] = {"location": [{"name": "A"}], "actor": None}
    set_path(data, "location.0.name", "B")
    set_path(data, "actor.user_name", "Sam")
    set_path(data, "door.name", "Front")
    assert data == {
        "location": [{"name": "B"}],
        "actor": {"user_name": "Sam"},
        "door": {"name": "Front"},
    }
    with pytest.raises(ValueError, match="set: 'location.first.name' does not fit"):
        set_path(data, "location.first.name", "x")


def test_the_test_file_in_the_docs_passes(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = (REPO / "docs" / "observability.md").read_text()
    [example] = [
        block
        for block in re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
        if "tests:" in block
    ]
    (folder / "docs.tests.yaml").write_text(example)
    assert main(["test", "-c", str(folder / "rules.example.yaml")]) == 0
    assert capsys.readouterr().out == "1 test(s) passed, 0 failed\n"
