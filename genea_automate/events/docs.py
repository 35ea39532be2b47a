"""docs/events.md, generated from the kinds table so the two cannot drift.

python -m genea_automate.events.docs > docs/events.md
python -m genea_automate.events.docs --write
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_type_hints

from genea_automate.events.kinds import (
    FAMILIES,
    TABLE,
    CodeSpec,
    KindOutcome,
    example_payload,
)
from genea_automate.events.model import Event
from genea_automate.events.normalise import normalise

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "events.md"
GENERATOR = "python -m genea_automate.events.docs --write"

# What each field holds; a test fails when a field of `Event` has no entry.
FIELD_NOTES: dict[str, str] = {
    "id": "Genea's `uuid` for the event (the dedup key)",
    "kind": "the dotted kind, listed below",
    "action": "Genea's `event_action` exactly as sent",
    "message": (
        "Genea's `event_message`, e.g. `Access Denied - Expired`; a card number "
        "in it is masked as in `card.number`"
    ),
    "category": "`access`, `audit` or `device`",
    "time": "when it happened, UTC (`Z`): `2025-03-03T13:58:11Z`, or "
    "`2025-03-03T13:58:11.806Z` for a time with milliseconds",
    "local_time": "`time` in the location's zone (see `details.timezone_fallback`)",
    "time_source": "`event_time`, else `created_at`, else `received_at`: "
    "the first one that could be read",
    "actor": "who did it (a card holder, a portal user, `SYSTEM`, an `API_KEY`)",
    "actor.type": "`USER`, `PERSON`, `SYSTEM`, `API_KEY`, as Genea sends it",
    "actor.uuid": "the user's uuid (`user_uuid`)",
    "actor.name": "`user_name`; an API key's name for `API_KEY` actors",
    "actor.email": "`user_email`",
    "actor.role": "`user_location_role`: `USER`, `ADMIN`, ...",
    "actor.user_location_uuid": "the user's membership of the location",
    "location": "the site; newer payloads send it as a list, the first is used",
    "location.uuid": "",
    "location.name": "",
    "location.timezone": "the IANA zone as sent, e.g. `America/New_York`",
    "location.city": "",
    "location.state": "",
    "door": "the door or reader; empty on older access payloads",
    "door.uuid": "",
    "door.name": "",
    "door.status": "`door_status`: `OPEN` or `CLOSED`",
    "door.model": "the reader model, e.g. `HID_RP10`",
    "controller": "the access-control panel",
    "controller.uuid": "",
    "controller.name": "often the panel's MAC address",
    "controller.mac": "",
    "controller.model": "e.g. `LP1502`, `V1000`",
    "controller.serial_number": "",
    "controller.hardware": "`mercury`, `vertx` or `unknown`, from the model or "
    "the MAC's vendor prefix",
    "card": "the credential presented; empty when none was",
    "card.uuid": "",
    "card.type": "`KEYCARD`, `MOBILE_KEY`, ...",
    "card.status": "`ACTIVE`, `EXPIRED`, ...",
    "card.number": "masked to its last four characters (`****7734`); "
    "the full number is only in `raw`",
    "card.badge_type": "the badge type's name, e.g. `Employee`",
    "resource": "what an audit event changed; empty for other events",
    "resource.uuid": "",
    "resource.name": "its name; a card's number, masked as in `card.number`",
    "resource.type": "`CARD`, `USER`, `DOOR`, ... as Genea sends it",
    "details": "`additional_info` with snake_case keys (each `... State` as "
    "`{prior, current}` booleans) plus what the kind adds, listed below",
    "raw": "the payload exactly as Genea sent it",
}

# In a template, times are ISO 8601 text and literals plain text (`to_dict`);
# `|` would also end a Markdown table cell.
_TEMPLATE_TYPES = {
    "datetime": "text (ISO 8601)",
    "Category": "text",
    "TimeSource": "text",
    "Hardware": "text",
    "str": "text",
    "str | None": "text or empty",
    "dict[str, Any]": "mapping",
}

_RECEIVED_AT = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)

# One whole payload for the field example: shaped like a current access event.
SAMPLE_PAYLOAD: dict[str, Any] = {
    "uuid": "67c5b5741a2b3c4d5e6f7081",
    "event_time": "2025-03-03T13:58:11.000Z",
    "event_type": "ACCESS",
    "event_action": "SEQUR_ACCESS_GRANTED",
    "event_message": "Access Granted",
    "actor": {
        "type": "USER",
        "user_location_uuid": "5e1b7c93-2d4f-4a6b-8c0e-1f3a5b7d9e11",
        "user_location_role": "USER",
        "user_uuid": "9c3e5a71-4b6d-4f8a-b2c4-6e8a0c2e4a21",
        "user_name": "Jordan Example",
        "user_email": "jordan.example@example.com",
    },
    "location": [
        {
            "uuid": "3b6f2a10-8c1e-4d5a-9f21-0c7e5a9b1d01",
            "name": "Harborview Labs HQ",
            "city": "New York",
            "state": "NY",
            "timezone": "America/New_York",
        }
    ],
    "door": {
        "uuid": "99aabbcc-ddee-4ff0-a112-334455660099",
        "name": "Main Entrance",
        "door_status": "CLOSED",
        "model": "HID_RP40",
    },
    "controller": {
        "uuid": "1d8e4f6a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        "name": "00:0F:E5:1A:2B:3C",
        "mac": "00:0f:e5:1a:2b:3c",
        "model": "LP1502",
    },
    "card": {
        "uuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c41",
        "type": "KEYCARD",
        "status": "ACTIVE",
        "card_number": "90017734",
        "badge_type": {"name": "Employee"},
    },
    "created_at": "2025-03-03T13:58:12.417Z",
}


def field_paths() -> list[tuple[str, str]]:
    """Every template path of an event and its type, in declaration order."""
    hints = get_type_hints(Event)
    paths: list[tuple[str, str]] = []
    for field in fields(Event):
        part = hints[field.name]
        if is_dataclass(part):
            paths.append((field.name, "object"))
            paths.extend(
                (f"{field.name}.{f.name}", _type_name(f.type)) for f in fields(part)
            )
        else:
            paths.append((field.name, _type_name(field.type)))
    return paths


def _type_name(annotation: object) -> str:
    """The type as a template sees it: times and literals are text there."""
    name = str(annotation)
    return _TEMPLATE_TYPES.get(name, name)


def render() -> str:
    """The whole of docs/events.md."""
    return "\n".join(_page()) + "\n"


def _page() -> Iterator[str]:
    yield f"<!-- Generated by `{GENERATOR}`; do not edit. -->"
    yield "# Events and kinds"
    yield ""
    yield "Every Genea webhook payload becomes one event with a dotted `kind`. A rule's"
    yield "`when` names kinds exactly or by prefix (`access.denied`, `door.*`). Genea"
    yield "codes compare case-insensitively; unknown codes are kept, never dropped."
    yield ""
    yield from _fields_section()
    yield from _summary_section()
    yield from _kinds_section()
    yield from _families_section()


def _fields_section() -> Iterator[str]:
    yield "## Fields"
    yield ""
    yield "Templates see these fields as variables (`{{ actor.name }}`,"
    yield "`{{ door.name }}`) and the whole event as `event` (`{{ event.time }}`);"
    yield "`match` conditions use the same dotted paths. A field Genea did not send"
    yield "is empty (`None`)."
    yield ""
    yield "| field | type | what it holds |"
    yield "|---|---|---|"
    for path, type_ in field_paths():
        yield f"| `{path}` | {type_} | {FIELD_NOTES.get(path, '')} |"
    yield ""
    yield "What the fields of this payload excerpt look like once normalised (`raw`"
    yield "left out):"
    yield ""
    yield from _json_block(SAMPLE_PAYLOAD)
    yield ""
    data = _normalise(SAMPLE_PAYLOAD).to_dict()
    del data["raw"]
    yield from _json_block(data)
    yield ""


def _summary_section() -> Iterator[str]:
    yield "## Kinds at a glance"
    yield ""
    yield "| kind | category | Genea `event_action` |"
    yield "|---|---|---|"
    for kind, rows in _kinds().items():
        codes = ", ".join(
            f"`{code}`" for code in dict.fromkeys(s.code for s, _ in rows)
        )
        yield f"| [`{kind}`](#{_anchor(kind)}) | {rows[0][0].category} | {codes} |"
    for family in FAMILIES:
        yield f"| `{family.pattern}` | {family.category} | {family.codes} |"
    yield ""


def _kinds_section() -> Iterator[str]:
    yield "## Kinds"
    yield ""
    for kind, rows in _kinds().items():
        yield f"### {kind}"
        yield ""
        yield f"Category `{rows[0][0].category}`."
        yield ""
        for spec, outcome in rows:
            yield from _outcome_lines(spec, outcome)
        yield ""


def _outcome_lines(spec: CodeSpec, outcome: KindOutcome) -> Iterator[str]:
    payload = example_payload(spec, outcome)
    yield f"- `{spec.code}`: {outcome.meaning}"
    if "event_message" in payload:
        yield f"  - Genea's message: `{payload['event_message']}`"
    if outcome.when != "always":
        yield f"  - When: {outcome.when}"
    yield from _example(payload, show_kind=False)


def _families_section() -> Iterator[str]:
    yield "## Codes the table does not know"
    yield ""
    yield "A code not in the table still gets a kind, by these rules:"
    yield ""
    for family in FAMILIES:
        yield f"- `{family.pattern}`, category {family.category}: from"
        yield f"  {family.codes}. {family.meaning}"
        yield from _example({"event_type": "ACCESS", **family.example}, show_kind=True)
    yield ""


def _example(payload: dict[str, Any], *, show_kind: bool) -> Iterator[str]:
    """A payload excerpt and what it normalises to, as a nested list item."""
    event = _normalise(payload)
    kind = f"kind `{event.kind}`, " if show_kind else ""
    yield f"  - Example: `{_json(payload)}`"
    yield f"    gives {kind}details `{_json(_example_details(event))}`"


def _example_details(event: Event) -> dict[str, Any]:
    """The details, without the zone note every location-less excerpt has."""
    return {k: v for k, v in event.details.items() if k != "timezone_fallback"}


def _kinds() -> dict[str, list[tuple[CodeSpec, KindOutcome]]]:
    """The table grouped by kind, in table order."""
    grouped: dict[str, list[tuple[CodeSpec, KindOutcome]]] = {}
    for spec in TABLE:
        for outcome in spec.outcomes:
            grouped.setdefault(outcome.kind, []).append((spec, outcome))
    return grouped


def _anchor(kind: str) -> str:
    """The heading anchor GitHub makes for `### <kind>`."""
    return kind.replace(".", "")


def _normalise(payload: dict[str, Any]) -> Event:
    return normalise(payload, received_at=_RECEIVED_AT)


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _json_block(value: Any) -> Iterator[str]:
    yield "```json"
    yield _json(value, indent=2)
    yield "```"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page, or write it to docs/events.md with `--write`."""
    parser = argparse.ArgumentParser(prog="python -m genea_automate.events.docs")
    parser.add_argument(
        "--write",
        nargs="?",
        const=DOCS_PATH,
        type=Path,
        metavar="PATH",
        help="write the page to PATH (default: the repository's docs/events.md)",
    )
    args = parser.parse_args(argv)
    page = render()
    if args.write is None:
        sys.stdout.write(page)
    else:
        args.write.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
