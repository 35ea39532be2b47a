"""The status page in real headless Chromium, served by a real daemon process."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.status.conftest import ADMIN_TOKEN
from tests.support.browser import chromium, screenshot_path
from tests.support.daemon import DaemonProcess
from tests.support.genea import TEST_SECRET, body_of, payload
from tests.support.http_server import LoopbackHttpServer, Reply

RULES = """
store: "sqlite:///./store.db"
endpoints: {{main: {{secret: "{secret}"}}}}
status: {{admin_token: "{token}"}}
rules:
  - id: badge-to-timesheet
    description: Every badge at HQ goes to the timesheet service.
    when: {{event: access.granted, location: Harborview Labs HQ}}
    then:
      - http: {{url: "{target}/clock-in", json: {{who: "{{{{ actor.name }}}}"}}}}
        retry: {{attempts: 1}}
  - id: night-badge
    description: A badge outside office hours is logged.
    when: {{event: access.granted}}
    if:
      - not: {{schedule: {{windows: [{{days: mon-fri, from: "07:00", to: "19:00"}}]}}}}
    then:
      - log: {{level: warning, message: "{{{{ actor.name }}}} badged in after hours"}}
"""
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def daemon(tmp_path: Path, http_server: LoopbackHttpServer) -> Iterator[DaemonProcess]:
    config = tmp_path / "rules.yaml"
    config.write_text(
        textwrap.dedent(RULES).format(
            secret=TEST_SECRET, token=ADMIN_TOKEN, target=http_server.url
        )
    )
    process = DaemonProcess(config)
    process.start()
    yield process
    if process.running:
        process.stop()


def log_in(page: Page, daemon: DaemonProcess) -> None:
    page.goto(f"{daemon.url}/status")
    expect(page.get_by_label("Admin token")).to_be_visible()
    page.screenshot(path=screenshot_path("status-login"))
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()


def test_the_page_asks_for_the_token_then_shows_a_fresh_event(
    browser: Browser, daemon: DaemonProcess
) -> None:
    mark = len(daemon.log)
    assert daemon.post(body_of(payload("01", uuid="browser-event"))).status_code == 200
    daemon.wait_for_log("event browser-event (access.granted)", since=mark)

    page = browser.new_page()
    page.goto(f"{daemon.url}/status/rules")
    expect(page).to_have_url(f"{daemon.url}/status/login?next=/status/rules")
    page.get_by_label("Admin token").fill("not-the-token-at-all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")

    log_in(page, daemon)
    expect(page.get_by_role("heading", name="Recent events")).to_be_visible()
    link = page.get_by_role("link", name="Mon 03 Mar 2025 08:58:11 UTC-05:00")
    expect(link).to_be_visible()
    expect(page.get_by_text("Harborview Labs HQ · Jordan Example")).to_be_visible()
    page.screenshot(path=screenshot_path("status-events"), full_page=True)

    link.click()
    expect(page.get_by_role("heading", name="access.granted")).to_be_visible()
    expect(page.get_by_text("fired", exact=True)).to_be_visible()
    expect(
        page.get_by_text("the condition `not` said no, as schedule held")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("status-trace"), full_page=True)

    page.get_by_role("link", name="Rules").click()
    expect(
        page.get_by_text("Every badge at HQ goes to the timesheet service.")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("status-rules"), full_page=True)

    phone = browser.new_page(viewport=PHONE)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"{daemon.url}/status")
    expect(phone.get_by_role("heading", name="Recent events")).to_be_visible()
    phone.screenshot(path=screenshot_path("status-events-phone"), full_page=True)


def test_a_dead_letters_retry_button_delivers_it(
    browser: Browser, daemon: DaemonProcess, http_server: LoopbackHttpServer
) -> None:
    http_server.reply(Reply(status=400, body="unknown_user"))
    mark = len(daemon.log)
    assert daemon.post(body_of(payload("01", uuid="browser-dead"))).status_code == 200
    daemon.wait_for_log("moved to the dead letters", since=mark)

    page = browser.new_page()
    log_in(page, daemon)
    page.get_by_role("link", name="Dead letters").click()
    expect(page.get_by_text("HTTP 400 Bad Request: unknown_user")).to_be_visible()
    page.screenshot(path=screenshot_path("status-dead-letters"), full_page=True)

    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_text("is queued again")).to_be_visible()
    requests = http_server.wait_for_requests(2, timeout=15)
    assert [r.json() for r in requests] == [{"who": "Jordan Example"}] * 2
    assert (
        requests[0].headers["idempotency-key"] == requests[1].headers["idempotency-key"]
    )
    daemon.wait_for_log("delivered http POST", since=mark)
    page.reload()
    expect(page.get_by_text("No dead letters")).to_be_visible()
    page.screenshot(path=screenshot_path("status-dead-letters-after-retry"))
