"""The Prometheus metrics every part of the pipeline updates, served at /metrics.

They live in the process-wide default registry, as prometheus-client intends:
one daemon per process. Updating one is a lock and an addition, cheap enough
for the webhook path. Label values come from the rules file (endpoint names,
rule ids, plugin names) or from Genea (kinds), never from a caller's URL.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

UNKNOWN_ENDPOINT = "(unknown)"

WEBHOOKS = Counter(
    "genea_webhooks",
    "Webhook requests answered, by endpoint and HTTP status code.",
    ["endpoint", "code"],
)
SIGNATURE_FAILURES = Counter(
    "genea_signature_failures",
    "Webhooks refused because X-Sequr-Signature was missing or wrong.",
    ["endpoint"],
)
EVENTS = Counter("genea_events", "Events decided, by kind.", ["kind"])
RULE_EVALUATIONS = Counter(
    "genea_rule_evaluations",
    "Rules evaluated against an event, by result: not_matched (the `when` "
    "filter said no), conditions_failed, fired, or error (an action failed to "
    "render).",
    ["rule", "result"],
)
RULE_FIRINGS = Counter("genea_rule_firings", "Rules that fired, by rule.", ["rule"])
ACTION_ATTEMPTS = Counter(
    "genea_action_attempts",
    "Delivery attempts, by plugin and outcome: delivered, retry (failed, tried "
    "again later) or dead (failed for good, moved to the dead letters).",
    ["plugin", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "genea_action_delivery_latency_seconds",
    "From the decision that queued an action to its successful delivery.",
    ["plugin"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)
OUTBOX_DEPTH = Gauge("genea_outbox_depth", "Actions waiting for delivery.")
DEAD_LETTERS = Gauge("genea_dead_letters", "Actions in the dead-letter queue.")
STORE_LATENCY = Histogram(
    "genea_store_latency_seconds",
    "Store operations from call to result, queueing included: `webhook` for "
    "ingest (Genea waits for it), `background` for everything else.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)


def webhook_answered(endpoint: str, known: bool, code: int) -> None:
    """Count one answer; unknown endpoint names share one label value."""
    _child(WEBHOOKS, endpoint if known else UNKNOWN_ENDPOINT, str(code)).inc()


@functools.lru_cache(maxsize=4096)
def _child(metric: Any, *values: str) -> Any:
    """`metric.labels(*values)`, remembered: labels() takes a lock and builds a
    key on every call, and the hot paths count with the same few values."""
    return metric.labels(*values)


def rule_result(rule_trace: Mapping[str, Any]) -> str:
    """One rule's entry of a decision trace, as a `result` label value."""
    if rule_trace.get("errors"):
        return "error"
    if rule_trace.get("fired"):
        return "fired"
    return "conditions_failed" if rule_trace.get("matched") else "not_matched"


def decision_made(kind: str, trace: Mapping[str, Any]) -> None:
    """Count an event and every rule's verdict on it."""
    decisions_counted(decision_counts(kind, trace))


DecisionCounts = collections.Counter[tuple[str, ...]]
_DECIDED = {"events": EVENTS, "evaluations": RULE_EVALUATIONS, "firings": RULE_FIRINGS}


def decision_counts(kind: str, trace: Mapping[str, Any]) -> DecisionCounts:
    """What one decision adds to the decision metrics, as plain data that the
    deciding process can add up and send to the one that serves /metrics."""
    counts: DecisionCounts = collections.Counter({("events", kind): 1})
    for rule in trace.get("rules", []):
        counts["evaluations", rule["rule"], rule_result(rule)] += 1
        if rule.get("fired"):
            counts["firings", rule["rule"]] += 1
    return counts


def decisions_counted(counts: Mapping[tuple[str, ...], int]) -> None:
    for (metric, *labels), amount in counts.items():
        _child(_DECIDED[metric], *labels).inc(amount)


def action_delivered(plugin: str, latency: float) -> None:
    """Count a delivery, `latency` seconds after its decision queued it."""
    ACTION_ATTEMPTS.labels(plugin, "delivered").inc()
    DELIVERY_LATENCY.labels(plugin).observe(max(latency, 0.0))


def outbox_counted(pending: int, dead: int) -> None:
    """Set the outbox gauges; they are read from the store at each scrape."""
    OUTBOX_DEPTH.set(pending)
    DEAD_LETTERS.set(dead)


def store_called(urgent: bool, seconds: float) -> None:
    _child(STORE_LATENCY, "webhook" if urgent else "background").observe(seconds)
