"""The built-in actions, registered like any plugin."""

from __future__ import annotations

from typing import Any

from genea_automate.actions.http import HttpAction
from genea_automate.actions.log import LogAction
from genea_automate.actions.mqtt import MqttAction
from genea_automate.actions.slack import SlackAction
from genea_automate.plugin import ActionPlugin

BUILTIN_ACTIONS: list[type[ActionPlugin[Any]]] = [
    MqttAction,
    SlackAction,
    HttpAction,
    LogAction,
]

__all__ = ["BUILTIN_ACTIONS", "HttpAction", "LogAction", "MqttAction", "SlackAction"]
