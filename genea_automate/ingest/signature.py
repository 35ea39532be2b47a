"""Genea's X-Sequr-Signature: `sha1=` + hex HMAC-SHA1 of the body, keyed per webhook.

Genea's public sample signs `JSON.stringify(parsedBody)`, and live traffic matches an
HMAC over the raw request bytes, so Genea most likely sends exactly that text. We
therefore check the raw bytes first and only then a re-serialisation that imitates
JavaScript, for the case where something between Genea and us reformatted the JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence

SIGNATURE_HEADER = "X-Sequr-Signature"
PREFIX = "sha1="

_HEX_SHA1 = re.compile(r"[0-9a-fA-F]{40}")


def sign(secret: bytes, body: bytes) -> str:
    """The header value Genea would send for `body`: 'sha1=' and lowercase hex."""
    return PREFIX + hmac.new(secret, body, hashlib.sha1).hexdigest()


def parse_signature(header: str) -> bytes | None:
    """The 20-byte digest in a header value, or None when it is malformed.

    Whitespace around the value, an upper-case prefix and upper-case hex are
    tolerated: none of them changes what was signed.
    """
    value = header.strip()
    if value[: len(PREFIX)].lower() != PREFIX:
        return None
    hex_digest = value[len(PREFIX) :]
    if not _HEX_SHA1.fullmatch(hex_digest):
        return None
    return bytes.fromhex(hex_digest)


def verify(
    secrets: Sequence[bytes],
    body: bytes,
    header: str | None,
    parsed: Callable[[], object] | None = None,
) -> bool:
    """True when `header` signs `body` with one of `secrets` (current first).

    `parsed` returns the body's JSON (raising ValueError when it is not JSON); it
    is called only if no raw-bytes HMAC matches, so the caller can parse once,
    lazily, and reuse the result for its own checks.
    """
    claimed = None if header is None else parse_signature(header)
    return claimed is not None and verify_digest(secrets, body, claimed, parsed)


def verify_digest(
    secrets: Sequence[bytes],
    body: bytes,
    claimed: bytes,
    parsed: Callable[[], object] | None = None,
) -> bool:
    """`verify` for a digest already taken from its header by parse_signature."""
    # Raw bytes first: they are what Genea signed, they cost no parsing, and a
    # match on them cannot be a false positive of our JSON imitation.
    if _matches_any(secrets, body, claimed):
        return True
    stringified = _stringify(parsed if parsed is not None else lambda: json.loads(body))
    return stringified is not None and _matches_any(secrets, stringified, claimed)


def _matches_any(secrets: Sequence[bytes], body: bytes, claimed: bytes) -> bool:
    """Constant-time comparison of `claimed` with the HMAC under each secret."""
    matched = False
    for secret in secrets:
        digest = hmac.new(secret, body, hashlib.sha1).digest()
        # No early return: the answer time should not tell which secret matched.
        matched |= hmac.compare_digest(digest, claimed)
    return matched


def _stringify(parsed: Callable[[], object]) -> bytes | None:
    """Imitate JavaScript's JSON.stringify; None when the body cannot be imitated.

    A proxy that parses and re-writes JSON (spaces, escapes) breaks the raw HMAC,
    while Genea signed JSON.stringify of the same object. Known differences that
    this imitation cannot undo, so such bodies still fail: floats (JS `1e-7` and
    `1` vs Python `1e-07` and `1.0`), integers beyond 2**53 (JS rounds them) and
    lone surrogates (JS writes `\\ud800`; UTF-8 cannot encode them).
    """
    try:
        value = parsed()
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        # UnicodeEncodeError (a lone surrogate) is a ValueError too.
        return None
