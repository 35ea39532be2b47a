"""The whole rules file as one typed model, shaped by the registered plugins."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, create_model, model_validator

from genea_automate.config.endpoints import (
    EndpointConfig,
    EndpointName,
    FrozenModel,
    ServerConfig,
)
from genea_automate.config.observability import StatusConfig, TracesConfig
from genea_automate.config.retention import RetentionConfig
from genea_automate.config.rules import (
    RuleConfig,
    ScheduleConfig,
    StepOptions,
    WaitForConfig,
)
from genea_automate.config.values import Duration, TimeZoneName
from genea_automate.plugin import PluginRegistry

DEFAULT_STORE = "sqlite:///./genea-automate.db"


class StepBase(StepOptions):
    """One `then` step: exactly one action key plus the common options."""

    action_names: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _exactly_one_action(self) -> StepBase:
        given = [name for name in self.action_names if getattr(self, name) is not None]
        if len(given) != 1:
            allowed = ", ".join(self.action_names)
            found = ", ".join(given) or "none"
            raise ValueError(
                f"a step has exactly one action, one of: {allowed}; found {found}"
            )
        return self

    @model_validator(mode="after")
    def _wait_for_alone(self) -> StepBase:
        if getattr(self, "on_timeout", None) is not None and self.action != "wait_for":
            raise ValueError(
                f"on_timeout belongs to a wait_for step, not to {self.action}"
            )
        options = self.model_fields_set & set(StepOptions.model_fields)
        if self.action == "wait_for" and options:
            raise ValueError(
                f"a wait_for step takes none of {', '.join(sorted(options))}; its "
                "own timeout goes inside it: wait_for: {event: ..., timeout: 2m}"
            )
        return self

    @property
    def action(self) -> str:
        return next(n for n in self.action_names if getattr(self, n) is not None)

    @property
    def options(self) -> BaseModel:
        return getattr(self, self.action)  # type: ignore[no-any-return]


class ConfigBase(FrozenModel):
    """Top-level keys that do not come from plugins."""

    server: ServerConfig = ServerConfig()
    store: str = DEFAULT_STORE
    default_timezone: TimeZoneName = "UTC"
    max_event_age: Duration | None = None
    endpoints: dict[EndpointName, EndpointConfig] = Field(min_length=1)
    schedules: dict[str, ScheduleConfig] = {}
    status: StatusConfig = StatusConfig()
    traces: TracesConfig = TracesConfig()
    retention: RetentionConfig = RetentionConfig()


def build_config_model(registry: PluginRegistry) -> type[ConfigBase]:
    """The model of a rules file for the actions and sections of `registry`."""
    plugins = list(registry)
    step_fields: dict[str, Any] = {p.name: (p.Options | None, None) for p in plugins}
    action_step = create_model("ActionStep", __base__=StepBase, **step_fields)
    action_step.action_names = tuple(p.name for p in plugins)
    # on_timeout steps are actions only: a wait inside a wait is not supported.
    timeout_steps: Any = list[action_step]  # type: ignore[valid-type]
    step = create_model(
        "Step",
        __base__=action_step,
        wait_for=(WaitForConfig | None, None),
        on_timeout=(timeout_steps | None, None),
    )
    step.action_names = (*action_step.action_names, "wait_for")
    rule = create_model(
        "Rule",
        __base__=RuleConfig,
        then=(list[step], Field(min_length=1)),  # type: ignore[valid-type]
    )
    sections: dict[str, Any] = {
        p.name: (p.Section, {}) for p in plugins if p.Section is not None
    }
    return create_model(
        "Config",
        __base__=ConfigBase,
        rules=(list[rule], []),  # type: ignore[valid-type]
        **sections,
    )
