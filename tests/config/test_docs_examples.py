"""Every YAML example in docs/rules.md loads and validates without a warning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genea_automate.config.loader import load_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
CONNECTIONS = """\
endpoints:
  main: {secret: "test"}
mqtt:
  default: {url: "mqtt://127.0.0.1:1883"}
slack:
  ops: {webhook_url: "https://hooks.slack.com/services/T/B/X"}
"""
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_docs_rules_has_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.splitlines()[0][:40])
def test_docs_rules_example_validates(example: str, tmp_path: Path) -> None:
    text = example if example.startswith("endpoints:") else CONNECTIONS + example
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    loaded = load_config(
        path,
        environ={"GENEA_WEBHOOK_SECRET": "s", "SLACK_WEBHOOK_URL": "https://x.test/h"},
    )
    assert [str(w) for w in loaded.warnings] == []
