"""The `status` and `traces` sections: who may see the daemon, how long it remembers.

status:
  admin_token: "${GENEA_ADMIN_TOKEN}"   # the status page is off without one
  allow_ips: [127.0.0.1/32, "::1/128"]  # the default: this machine only
traces:
  keep_for: 14d          # decisions older than this are pruned...
  keep_per_rule: 20      # ...except each rule's latest matches and firings
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from genea_automate.config.endpoints import FrozenModel, IpNetwork
from genea_automate.config.values import Duration

LOOPBACK: list[IpNetwork] = [
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
]
MIN_TOKEN_LENGTH = 16


class StatusConfig(FrozenModel):
    """The status page: an admin token, and the addresses it answers.

    Without `admin_token` the page is off (it answers 404). With one, every
    request must carry it, as `Authorization: Bearer TOKEN` or through the
    login form's cookie, whatever address it comes from. `allow_ips` limits the
    callers further; behind a reverse proxy every caller has the proxy's
    address, so do not forward /status there unless the token is enough.
    """

    admin_token: SecretStr | None = None
    allow_ips: list[IpNetwork] = Field(default_factory=lambda: list(LOOPBACK))

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            # Never echo the value: it is a credential.
            raise ValueError(
                f"admin_token must be at least {MIN_TOKEN_LENGTH} characters; "
                "make one with `openssl rand -hex 24` and pass it through the "
                "environment, e.g. admin_token: ${GENEA_ADMIN_TOKEN}"
            )
        return value


class TracesConfig(FrozenModel):
    """How long the trace of every decision is kept."""

    keep_for: Duration = timedelta(days=14)
    keep_per_rule: int = Field(default=20, ge=0, le=10_000)
