"""What `simulate`, `replay` and the status page show of a payload: no secrets."""

from __future__ import annotations

import pytest

from genea_automate.actions.http import HttpAction, redact_url
from genea_automate.actions.log import LogAction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.org/in", "https://api.example.org/in"),
        (
            "https://api.example.org/in?who=ana&token=s3cret",
            "https://api.example.org/in?who=ana&token=***",
        ),
        (
            "https://bot:pa55@api.example.org/in?api_key=k&Signature=x",
            "https://bot:***@api.example.org/in?api_key=***&Signature=***",
        ),
        ("https://only-user@api.example.org/", "https://only-user@api.example.org/"),
    ],
)
def test_redact_url_masks_passwords_and_credential_parameters(
    url: str, shown: str
) -> None:
    assert redact_url(url) == shown


def test_http_redact_masks_credential_headers_only() -> None:
    payload = {
        "method": "POST",
        "url": "https://tt.example.org/clock-in?access_token=t",
        "headers": {
            "Authorization": "Bearer abc",
            "X-Api-Key": "k",
            "X-Request-Source": "genea",
        },
        "expect_status": None,
        "json": {"email": "ana@example.org"},
    }
    assert HttpAction().redact(payload) == {
        **payload,
        "url": "https://tt.example.org/clock-in?access_token=***",
        "headers": {
            "Authorization": "***",
            "X-Api-Key": "***",
            "X-Request-Source": "genea",
        },
    }
    assert payload["headers"]["Authorization"] == "Bearer abc"  # not changed


def test_other_actions_show_their_payload_as_is() -> None:
    payload = {"message": "hello", "level": "info"}
    assert LogAction().redact(payload) is payload
