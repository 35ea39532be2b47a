"""HMAC-SHA1 signing and verification, raw bytes first, then the JS imitation."""

from __future__ import annotations

import json

import pytest

from genea_automate.ingest.signature import parse_signature, sign, verify

from .conftest import PAYLOAD_IDS, PAYLOADS, SECRET, Payload

OLD_SECRET = b"the-secret-before-rotation"


def _never_parse() -> object:
    raise AssertionError("the body was parsed although the raw bytes matched")


def test_payloads_are_all_listed_in_the_readme() -> None:
    assert len(PAYLOADS) == 20


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_sign_matches_the_readme_signature(payload: Payload) -> None:
    assert sign(SECRET, payload.body) == payload.signature


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_verify_accepts_raw_bytes_without_parsing(payload: Payload) -> None:
    assert verify([SECRET], payload.body, payload.signature, _never_parse)


@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["ascii", "utf8"])
def test_verify_accepts_reformatted_json_via_the_fallback(
    payload: Payload, ensure_ascii: bool
) -> None:
    reformatted = json.dumps(
        json.loads(payload.body), indent=2, ensure_ascii=ensure_ascii
    ).encode()
    assert reformatted != payload.body
    assert verify([SECRET], reformatted, payload.signature)


def test_verify_parses_through_the_given_callable_once() -> None:
    body = b'{"uuid": "1", "event_action": "CREATED"}'
    calls: list[None] = []

    def parsed() -> object:
        calls.append(None)
        return json.loads(body)

    header = sign(SECRET, b'{"uuid":"1","event_action":"CREATED"}')
    assert verify([SECRET, OLD_SECRET], body, header, parsed)
    assert len(calls) == 1


def test_verify_accepts_a_previous_secret_during_rotation() -> None:
    body = PAYLOADS[0].body
    assert verify([SECRET, OLD_SECRET], body, sign(OLD_SECRET, body))


def test_verify_accepts_a_previous_secret_on_reformatted_json() -> None:
    body = PAYLOADS[0].body
    spaced = json.dumps(json.loads(body)).encode()
    assert verify([SECRET, OLD_SECRET], spaced, sign(OLD_SECRET, body))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("  {sig}\t", id="surrounding-whitespace"),
        pytest.param("{upper}", id="upper-case-hex"),
        pytest.param("SHA1={hex}", id="upper-case-prefix"),
    ],
)
def test_verify_tolerates_harmless_header_variants(header: str) -> None:
    body = PAYLOADS[0].body
    signature = sign(SECRET, body)
    hex_digest = signature.removeprefix("sha1=")
    value = header.format(
        sig=signature, upper="sha1=" + hex_digest.upper(), hex=hex_digest
    )
    assert verify([SECRET], body, value, _never_parse)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("sha256={hex}", id="other-algorithm"),
        pytest.param("{hex}", id="no-prefix"),
        pytest.param("sha1={hex}00", id="too-long"),
        pytest.param("sha1=" + "z" * 40, id="not-hex"),
        pytest.param("sha1=" + "0" * 40, id="wrong-digest"),
        pytest.param("sha1=\u00e9" + "0" * 39, id="non-ascii"),
    ],
)
def test_verify_refuses_bad_headers(header: str | None) -> None:
    body = PAYLOADS[0].body
    hex_digest = sign(SECRET, body).removeprefix("sha1=")
    value = None if header is None else header.format(hex=hex_digest)
    assert not verify([SECRET], body, value)


def test_verify_refuses_a_signature_made_with_another_secret() -> None:
    body = PAYLOADS[0].body
    assert not verify([SECRET], body, sign(b"someone-else", body))


def test_verify_refuses_everything_without_secrets() -> None:
    body = PAYLOADS[0].body
    assert not verify([], body, sign(SECRET, body))


def test_verify_refuses_a_changed_body() -> None:
    body = PAYLOADS[0].body
    changed = body.replace(b"SEQUR_ACCESS_GRANTED", b"SEQUR_ACCESS_DENIED")
    assert not verify([SECRET], changed, sign(SECRET, body))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[" * 100_000, id="nested-too-deep"),
        pytest.param(b'{"uuid":"\\ud800"}', id="lone-surrogate"),
    ],
)
def test_verify_refuses_bodies_the_fallback_cannot_imitate(body: bytes) -> None:
    assert not verify([SECRET], body, sign(SECRET, b'{"uuid":"1"}'))


def test_verify_fallback_misses_floats_that_javascript_prints_differently() -> None:
    # JSON.stringify writes 1e-7; Python writes 1e-07. A known, documented gap.
    js_text = b'{"uuid":"1","reading":1e-7}'
    spaced = b'{"uuid": "1", "reading": 1e-7}'
    assert not verify([SECRET], spaced, sign(SECRET, js_text))


@pytest.mark.parametrize(
    ("header", "digest"),
    [
        ("sha1=" + "ab" * 20, bytes.fromhex("ab" * 20)),
        (" SHA1=" + "AB" * 20 + " ", bytes.fromhex("ab" * 20)),
        ("sha1=" + "ab" * 19, None),
        ("sha1:" + "ab" * 20, None),
    ],
)
def test_parse_signature(header: str, digest: bytes | None) -> None:
    assert parse_signature(header) == digest
