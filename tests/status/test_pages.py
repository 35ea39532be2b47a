"""The status page: who may see it, and what each page answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genea_automate.app import Daemon
from genea_automate.decider import DecidingProcess
from genea_automate.errors import ConfigIssue
from tests.status.conftest import ADMIN_TOKEN, RULES, Post, bearer


@pytest.mark.parametrize(
    "rules_text", [RULES.replace(f'status: {{admin_token: "{ADMIN_TOKEN}"}}', "")]
)
async def test_without_an_admin_token_the_page_is_off(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/status", "/status/login", "/status/rules"):
        answer = await client.get(path, headers=bearer())
        assert (answer.status_code, answer.text) == (
            404,
            "The status page is off: set status.admin_token in the rules file.",
        )


async def test_a_visitor_is_sent_to_the_login_form(client: httpx.AsyncClient) -> None:
    answer = await client.get("/status/rules?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/status/login?next=/status/rules%3Fx%3D1"
    form = await client.get(answer.headers["location"])
    assert form.status_code == 200
    assert 'name="token" type="password"' in form.text
    assert 'name="next" value="/status/rules?x=1"' in form.text


async def test_login_sets_an_http_only_cookie_that_opens_the_pages(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post(
        "/status/login", data={"token": "nope", "next": "/status"}
    )
    assert wrong.status_code == 401 and "That is not the admin token." in wrong.text
    assert "set-cookie" not in wrong.headers

    right = await client.post(
        "/status/login", data={"token": ADMIN_TOKEN, "next": "/status/rules"}
    )
    assert (right.status_code, right.headers["location"]) == (303, "/status/rules")
    cookie = right.headers["set-cookie"]
    assert ADMIN_TOKEN not in cookie
    for flag in ("HttpOnly", "Path=/status", "SameSite=strict"):
        assert flag in cookie
    assert (await client.get("/status/rules")).status_code == 200

    out = await client.post("/status/logout")
    assert out.status_code == 303
    assert (await client.get("/status/rules")).status_code == 303


async def test_a_login_may_only_lead_back_into_the_status_page(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/status/login", data={"token": ADMIN_TOKEN, "next": "https://evil.example/"}
    )
    assert answer.headers["location"] == "/status"


async def test_bearer_tokens_and_addresses(
    client: httpx.AsyncClient, daemon: Daemon
) -> None:
    assert (await client.get("/status", headers=bearer())).status_code == 200
    wrong = await client.get("/status", headers=bearer("x" * 32))
    assert (wrong.status_code, wrong.text) == (401, "Wrong admin token.")

    transport = httpx.ASGITransport(app=daemon.app, client=("203.0.113.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as remote:
        far = await remote.get("/status", headers=bearer())
    assert (far.status_code, far.text) == (
        403,
        "This address may not see the status page (status.allow_ips).",
    )


@pytest.mark.parametrize(
    "rules_text",
    [
        RULES.replace(
            'status: {admin_token: "',
            'status: {allow_ips: [203.0.113.0/24], admin_token: "',
        )
    ],
)
async def test_allow_ips_opens_the_page_to_other_addresses(daemon: Daemon) -> None:
    transport = httpx.ASGITransport(app=daemon.app, client=("203.0.113.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as remote:
        assert (await remote.get("/status", headers=bearer())).status_code == 200
        assert (await remote.get("/status")).status_code == 303


async def test_pages_forbid_scripts_and_caching(client: httpx.AsyncClient) -> None:
    answer = await client.get("/status", headers=bearer())
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    assert answer.headers["cache-control"] == "no-store"
    assert "<script" not in answer.text


async def test_recent_events_filter_by_kind_and_location(
    client: httpx.AsyncClient, post_event: Post
) -> None:
    await post_event("01", uuid="ev-granted")
    await post_event("06", uuid="ev-denied")
    await post_event("07", uuid="ev-westside")

    async def shown(query: str) -> list[str]:
        page = (await client.get(f"/status{query}", headers=bearer())).text
        return [
            uuid
            for uuid in ("ev-granted", "ev-denied", "ev-westside")
            if f"/status/events/{uuid}" in page
        ]

    assert await shown("") == ["ev-granted", "ev-denied", "ev-westside"]
    assert await shown("?kind=access.denied") == ["ev-denied", "ev-westside"]
    assert await shown("?location=harborview") == ["ev-granted", "ev-denied"]
    assert await shown("?kind=access.denied&location=westside") == ["ev-westside"]


async def test_the_trace_page_says_why_a_rule_did_not_fire(
    client: httpx.AsyncClient, post_event: Post
) -> None:
    await post_event("01", uuid="first")
    await post_event("01", uuid="second", event_time="2025-03-03T14:30:00.000Z")
    page = (await client.get("/status/events/second", headers=bearer())).text
    assert "did not fire" in page
    assert (
        "the condition first_arrival said no: not the first: Jordan Example arrived "
        "08:58 local on 2025-03-03"
    ) in page
    first = (await client.get("/status/events/first", headers=bearer())).text
    assert 'step 0: <span class="mono">log info</span>' in first
    assert ">pending<" in first
    missing = await client.get("/status/events/nope", headers=bearer())
    assert missing.status_code == 404 and "No such event" in missing.text


async def test_the_rules_page_shows_last_firing_and_last_error(
    client: httpx.AsyncClient, daemon: Daemon, post_event: Post
) -> None:
    await post_event("01", uuid="fired")
    await post_event("06", uuid="refused")
    [action] = await daemon.store.admin.actions_of(["refused"])
    await daemon.store.action_failed(action.id, "HTTP 500 Internal Server Error", None)
    page = (await client.get("/status/rules", headers=bearer())).text
    assert "The first badge of the day starts the coffee." in page
    assert '<a href="/status/events/fired">' in page
    assert "HTTP 500 Internal Server Error" in page


async def test_dead_letters_can_be_retried_and_dropped(
    client: httpx.AsyncClient, daemon: Daemon, post_event: Post
) -> None:
    await post_event("06", uuid="dl-1")
    await post_event("07", uuid="dl-2")
    actions = await daemon.store.admin.actions_of(["dl-1", "dl-2"])
    for action in actions:
        await daemon.store.action_failed(action.id, "gave up: target down", None)
    first, second = (action.id for action in actions)

    page = (await client.get("/status/dead-letters", headers=bearer())).text
    assert page.count("gave up: target down") == 2
    assert f'action="/status/dead-letters/{first}/retry"' in page

    forged = await client.post(
        f"/status/dead-letters/{first}/retry",
        headers={**bearer(), "Origin": "https://evil.example"},
    )
    assert forged.status_code == 403

    retried = await client.post(
        f"/status/dead-letters/{first}/retry",
        headers={**bearer(), "Origin": "http://t"},
    )
    assert retried.headers["location"] == f"/status/dead-letters?retried={first}"
    dropped = await client.post(f"/status/dead-letters/{second}/drop", headers=bearer())
    assert dropped.headers["location"] == f"/status/dead-letters?dropped={second}"

    states = {a.id: a.state for a in await daemon.store.admin.actions_of(["dl-1"])}
    assert states == {first: "pending"}
    page = (await client.get(dropped.headers["location"], headers=bearer())).text
    assert "No dead letters" in page and f"Action {second} was dropped." in page


async def test_a_refused_reload_shows_its_errors_on_every_page(
    client: httpx.AsyncClient, daemon: Daemon, tmp_path: Path
) -> None:
    daemon.last_reload_errors = [
        ConfigIssue(
            str(tmp_path / "rules.yaml"),
            9,
            5,
            "rules[0].when",
            "unknown event kind 'acces.granted'",
        )
    ]
    for path in ("/status", "/status/rules", "/status/dead-letters"):
        page = (await client.get(path, headers=bearer())).text
        assert "The last reload of the rules file was refused" in page
        assert "rules.yaml:9:5: error: rules[0].when: unknown event kind" in page


async def test_rules_not_being_decided_show_on_every_page(
    client: httpx.AsyncClient, daemon: Daemon
) -> None:
    page = (await client.get("/status", headers=bearer())).text
    assert "Rules are not being decided" not in page

    # As `serve` has it, before its deciding process said it started.
    daemon.deciding = DecidingProcess(
        daemon.loaded.store_url,
        lambda: daemon.loaded,
        daemon.clock,
        lambda: None,
        lambda: None,
    )
    for path in ("/status", "/status/rules", "/status/dead-letters"):
        page = (await client.get(path, headers=bearer())).text
        assert "Rules are not being decided:" in page
        assert "not running since 2025-03-03 14:00:00 UTC: starting" in page


async def test_a_cross_site_login_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/status/login",
        data={"token": ADMIN_TOKEN},
        headers={"Origin": "https://evil.example"},
    )
    assert (answer.status_code, answer.text) == (403, "Cross-site form refused.")
    assert "set-cookie" not in answer.headers


async def test_store_trouble_answers_503_not_a_crash(
    client: httpx.AsyncClient, daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "store.db").rename(tmp_path / "elsewhere.db")
    (tmp_path / "store.db").mkdir()  # a folder cannot be opened as a database
    answer = await client.get("/status", headers=bearer())
    assert answer.status_code == 503
    assert answer.text.startswith("The store cannot be read right now: SQLite: ")
