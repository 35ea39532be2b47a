"""The `then` of a rule: action steps and waits, rendered into queued actions.

A rule that fires renders its steps up to its first `wait_for`, which begins a
wait in the store; the steps after it are rendered only when the wait ends (see
rules/waits.py). Each step has a path that is stable across restarts ("2",
"1.on_timeout.0"), and idempotency keys are made of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from genea_automate.config.models import StepBase
from genea_automate.config.rules import OnMissedConfig, RuleConfig, WaitForConfig
from genea_automate.errors import TemplateRenderError, plugin_crash_contained
from genea_automate.plugin import ActionPlugin
from genea_automate.rules.conditions import Condition, EvaluationContext, evaluate_all
from genea_automate.rules.keys import scope_key, scope_noun, scope_phrase
from genea_automate.rules.matching import KindPattern
from genea_automate.rules.templates import TemplateRenderer
from genea_automate.store.base import ActionToQueue, Wait


@dataclass(frozen=True, slots=True)
class ActionStep:
    path: str
    plugin: ActionPlugin[Any]
    config: StepBase

    def render(self, rule_id: str, renderer: TemplateRenderer) -> ActionToQueue:
        with plugin_crash_contained(self.plugin.name):
            payload = self.plugin.render(self.config.options, renderer)
            order_key = self.plugin.ordering_key(payload)
            description = self.plugin.describe(payload)
        retry = self.config.retry
        not_after = self.config.not_after
        return ActionToQueue(
            rule_id=rule_id,
            step=self.path,
            plugin=self.plugin.name,
            payload=payload,
            order_key=order_key,
            description=description,
            max_attempts=retry.attempts,
            timeout=self.config.timeout.total_seconds(),
            backoff=retry.backoff.total_seconds(),
            max_backoff=retry.max_backoff.total_seconds(),
            not_after=None if not_after is None else not_after.total_seconds(),
        )


@dataclass(frozen=True, slots=True)
class WaitStep:
    index: int
    kinds: tuple[KindPattern, ...]
    same: str
    timeout: timedelta
    on_timeout: tuple[ActionStep, ...]

    @property
    def awaited(self) -> str:
        return " or ".join(pattern.text for pattern in self.kinds)


Step = ActionStep | WaitStep


@dataclass
class Outcome:
    """What running part of a plan produced: actions, errors, a wait begun."""

    actions: list[ActionToQueue] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wait: dict[str, Any] | None = None  # how the trace shows the wait begun
    aborted: bool = False  # a step failed, so nothing was queued

    def abort(self, error: str) -> None:
        self.errors.append(f"{error}; so the rule queued none of its steps")
        self.actions.clear()
        self.aborted = True

    @property
    def fired(self) -> bool:
        return bool(self.actions) or self.wait is not None

    def traced(self, trace: dict[str, Any]) -> dict[str, Any]:
        trace.update(
            fired=self.fired,
            actions=[{"step": a.step, "action": a.description} for a in self.actions],
        )
        if self.wait is not None:
            trace["waiting"] = self.wait
        if self.errors:
            trace["errors"] = self.errors
        return trace


@dataclass(frozen=True, slots=True)
class Plan:
    """A rule's steps, with what its missed deadlines do."""

    rule_id: str
    steps: tuple[Step, ...]
    fingerprint: str
    on_missed: OnMissedConfig

    @property
    def waits(self) -> bool:
        """Whether a wait_for step is among the steps."""
        return any(isinstance(step, WaitStep) for step in self.steps)

    def run(self, start: int, ctx: EvaluationContext, after: datetime) -> Outcome:
        """Render the steps from `start` up to the first wait_for, and begin it.

        Only events from `after` on (by event time) can end that wait.
        """
        rest = self.steps[start:]
        cut = next((i for i, s in enumerate(rest) if isinstance(s, WaitStep)), None)
        actions = [s for s in rest[:cut] if isinstance(s, ActionStep)]
        outcome = self.render(actions, ctx.renderer)
        wait_step = None if cut is None else rest[cut]
        if isinstance(wait_step, WaitStep) and not outcome.aborted:
            self._begin_wait(wait_step, ctx, after, outcome)
        return outcome

    def start(
        self,
        conditions: tuple[Condition, ...],
        ctx: EvaluationContext,
        after: datetime,
        trace: dict[str, Any],
    ) -> Outcome:
        """Check the conditions in order and, if all hold, run the steps.

        `trace` gets the verdicts and what was queued.
        """
        results = evaluate_all(conditions, ctx)
        trace.update(matched=True, conditions=[r.to_dict() for r in results])
        if not all(result.passed for result in results):
            return Outcome()
        outcome = self.run(0, ctx, after)
        outcome.traced(trace)
        return outcome

    def on_timeout(self, index: int, renderer: TemplateRenderer) -> Outcome:
        step = self.steps[index]
        assert isinstance(step, WaitStep), "a wait is filed under its wait_for step"
        return self.render(step.on_timeout, renderer)

    def render(
        self, steps: Sequence[ActionStep], renderer: TemplateRenderer
    ) -> Outcome:
        """Render every step, or none: half a rule (the alarm but not its
        message) is harder to reason about than none of it."""
        outcome = Outcome()
        for step in steps:
            try:
                outcome.actions.append(step.render(self.rule_id, renderer))
            except (TemplateRenderError, ValueError) as exc:
                error = f"step {step.path} ({step.plugin.name}): {exc}"
                if not step.config.continue_on_error:
                    outcome.abort(error)
                    break
                outcome.errors.append(error)
        return outcome

    def _begin_wait(
        self, step: WaitStep, ctx: EvaluationContext, after: datetime, outcome: Outcome
    ) -> None:
        event = ctx.event
        value = None if event is None else scope_key(step.same, event)
        if event is None or value is None:
            noun = scope_noun(step.same)
            outcome.abort(f"step {step.index} (wait_for): the event names no {noun}")
            return
        deadline = ctx.now + step.timeout
        ctx.state.add_wait(
            Wait(
                rule_id=self.rule_id,
                started_by=ctx.ref,
                step=step.index,
                kinds=tuple(pattern.text for pattern in step.kinds),
                key=wait_key(step.same, value),
                not_before=after,
                deadline=deadline,
                event=ctx.data,
                fingerprint=self.fingerprint,
            )
        )
        outcome.wait = {
            "step": str(step.index),
            "for": step.awaited,
            "where": scope_phrase(step.same, event, "at").lstrip() or "anywhere",
            "until": deadline.isoformat(),
        }


def wait_key(scope: str, value: str) -> str:
    return f"{scope}:{value}"


def fingerprint(steps: list[StepBase]) -> str:
    """A digest of a rule's steps: a wait begun under other steps is dropped."""
    dumped = [step.model_dump(mode="json", by_alias=True) for step in steps]
    text = json.dumps(dumped, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_plan(config: RuleConfig, plugins: Mapping[str, ActionPlugin[Any]]) -> Plan:
    """The plan of a validated rule; its actions' plugins were checked already."""
    steps: list[StepBase] = config.then
    return Plan(
        config.id,
        tuple(_step(index, step, plugins) for index, step in enumerate(steps)),
        fingerprint(steps),
        config.on_missed,
    )


def _step(
    index: int, config: StepBase, plugins: Mapping[str, ActionPlugin[Any]]
) -> Step:
    wait: WaitForConfig | None = getattr(config, "wait_for", None)
    if wait is None:
        return ActionStep(str(index), plugins[config.action], config)
    on_timeout: list[StepBase] = getattr(config, "on_timeout", None) or []
    return WaitStep(
        index,
        tuple(KindPattern.parse(kind) for kind in wait.event),
        wait.same,
        wait.timeout,
        tuple(
            ActionStep(f"{index}.on_timeout.{n}", plugins[step.action], step)
            for n, step in enumerate(on_timeout)
        ),
    )
