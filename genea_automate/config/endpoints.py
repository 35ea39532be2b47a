"""Where Genea posts: the `server` and `endpoints` sections of the rules file."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

DEFAULT_LISTEN = "127.0.0.1:8080"
MIB = 1024 * 1024


class FrozenModel(BaseModel):
    """Validated config is immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


IpNetwork = Annotated[
    ipaddress.IPv4Network | ipaddress.IPv6Network, Field(union_mode="left_to_right")
]


class TlsConfig(FrozenModel):
    certfile: Path
    keyfile: Path


class ServerConfig(FrozenModel):
    listen: str = DEFAULT_LISTEN
    tls: TlsConfig | None = None

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str) -> str:
        split_listen(value)
        return value


def split_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' -> (host, port); ValueError if malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"listen must be HOST:PORT such as '127.0.0.1:8080', got {value!r}"
        )
    return host.strip("[]"), int(port)


def is_blank(secret: SecretStr) -> bool:
    """Empty, or only spaces and invisible characters (a stray newline from a
    file, a space from `${VAR:- }`): as an HMAC key, anyone could guess it."""
    text = secret.get_secret_value()
    return not "".join(c for c in text if c.isprintable()).strip()


class RequiredHeader(FrozenModel):
    """A custom header Genea adds to every call, checked like a second secret."""

    name: str
    value: SecretStr

    @field_validator("value")
    @classmethod
    def _value_not_blank(cls, value: SecretStr) -> SecretStr:
        if is_blank(value):
            raise ValueError("the required header's value is empty or blank")
        return value


_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_endpoint_name(name: str) -> str:
    """An endpoint name is part of a URL and of every idempotency key, which
    join parts with ':' and travel in HTTP headers: plain ASCII only."""
    if not _ENDPOINT_NAME.fullmatch(name):
        raise ValueError(
            f"endpoint name {name!r} may only use letters, digits, '-', '_' and "
            "'.' (at most 64): it is the last part of the URL Genea posts to"
        )
    return name


EndpointName = Annotated[str, AfterValidator(check_endpoint_name)]


class EndpointConfig(FrozenModel):
    """One webhook configured in Genea, served at POST /hooks/{name}."""

    secret: SecretStr
    previous_secrets: list[SecretStr] = []
    max_body_bytes: int = Field(default=MIB, gt=0)
    allow_ips: list[IpNetwork] | None = None
    trusted_proxies: list[IpNetwork] = []
    required_header: RequiredHeader | None = None

    @field_validator("secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if is_blank(value):
            raise ValueError(
                "the endpoint secret is empty or blank; copy it from Genea's webhook "
                "page into an environment variable and write secret: ${VARIABLE}"
            )
        return value

    @field_validator("previous_secrets")
    @classmethod
    def _previous_not_empty(cls, values: list[SecretStr]) -> list[SecretStr]:
        for index, value in enumerate(values):
            if is_blank(value):
                raise ValueError(
                    f"previous_secrets[{index}] is empty or blank (an unset "
                    "variable?); such a secret would accept anyone's signature: "
                    "remove it once the rotation is over, or set the variable"
                )
        return values

    def secrets(self) -> list[bytes]:
        """The current secret first, then any still accepted during rotation."""
        every = [self.secret, *self.previous_secrets]
        return [secret.get_secret_value().encode() for secret in every]
