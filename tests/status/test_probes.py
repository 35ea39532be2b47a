"""/metrics parses and moves as events arrive; /readyz says what is not ready."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from genea_automate.app import Daemon
from tests.status.conftest import Post
from tests.support.genea import body_of, payload

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_parse_and_count_what_a_test_posts(
    client: httpx.AsyncClient, daemon: Daemon, post_event: Post
) -> None:
    before = await scrape(client)

    assert (await post_event("01", uuid="m-granted")).status_code == 200
    assert (await post_event("06", uuid="m-denied")).status_code == 200
    body = body_of(payload("01", uuid="m-forged"))
    forged = {
        "Content-Type": "application/json",
        "X-Sequr-Signature": "sha1=" + "0" * 40,
    }
    assert (
        await client.post("/hooks/main", content=body, headers=forged)
    ).status_code == 401
    assert (await client.post("/hooks/nope", content=body)).status_code == 404
    assert await daemon.worker.run_once() == 1  # one log action per ordering key
    await daemon.worker.drain(5)

    after = await scrape(client)
    counts = {
        ("webhooks 200", 2): moved(
            before, after, "genea_webhooks_total", endpoint="main", code="200"
        ),
        ("webhooks 401", 1): moved(
            before, after, "genea_webhooks_total", endpoint="main", code="401"
        ),
        ("webhooks 404", 1): moved(
            before, after, "genea_webhooks_total", endpoint="(unknown)", code="404"
        ),
        ("signature failures", 1): moved(
            before, after, "genea_signature_failures_total", endpoint="main"
        ),
        ("granted events", 1): moved(
            before, after, "genea_events_total", kind="access.granted"
        ),
        ("coffee fired", 1): moved(
            before, after, "genea_rule_firings_total", rule="coffee"
        ),
        ("coffee evaluated, fired", 1): moved(
            before, after, "genea_rule_evaluations_total", rule="coffee", result="fired"
        ),
        ("coffee evaluated, not matched", 1): moved(
            before,
            after,
            "genea_rule_evaluations_total",
            rule="coffee",
            result="not_matched",
        ),
        ("log delivered", 1): moved(
            before,
            after,
            "genea_action_attempts_total",
            plugin="log",
            outcome="delivered",
        ),
        ("latency observed", 1): moved(
            before, after, "genea_action_delivery_latency_seconds_count", plugin="log"
        ),
    }
    assert counts == {key: float(key[1]) for key in counts}
    assert (
        moved(before, after, "genea_store_latency_seconds_count", operation="webhook")
        == 2
    )
    assert after[("genea_outbox_depth", ())] == 1  # the second log action waits
    assert after[("genea_dead_letters", ())] == 0


async def test_readyz_is_ready_with_a_writable_store(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ready"})


async def test_readyz_names_a_broker_that_is_not_connected(
    client: httpx.AsyncClient, daemon: Daemon
) -> None:
    mqtt = daemon.plugins["mqtt"]
    await mqtt.start()
    try:
        answer = await client.get("/readyz")
    finally:
        await mqtt.stop()
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not ready",
        "problems": ["MQTT connection 'default' to 127.0.0.1:1 is not connected"],
    }


async def test_readyz_while_shutting_down_and_with_the_store_closed(
    client: httpx.AsyncClient, daemon: Daemon
) -> None:
    daemon.draining = True
    assert (await client.get("/readyz")).json()["problems"] == ["shutting down"]
    daemon.draining = False
    await daemon.store.close()
    answer = await client.get("/readyz")
    await daemon.store.open()
    assert answer.status_code == 503
    assert answer.json()["problems"] == [
        "the store cannot be written: the store is not open"
    ]
