"""Settings that every long-running service shares, and one way to load them.

Each service subclasses ``ServiceSettings`` in its own ``settings.py`` and builds it once in
``main()`` through ``load_settings``: a bad value stops the process with ``EXIT_BAD_SETTINGS`` and a
message that names each offending environment variable (never its value: some are secrets).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .net import parse_address

__all__ = [
    "ENV_PREFIX",
    "EXIT_BAD_SETTINGS",
    "HostPort",
    "LogFormatSetting",
    "LogLevel",
    "ServiceSettings",
    "env_var",
    "load_settings",
    "settings_problems",
]

ENV_PREFIX = "TICKETFLOW_"
# One exit code for "the environment is wrong" across every service: a supervisor (systemd, a
# container runtime, the launcher) can tell it from a crash and stop restarting.
EXIT_BAD_SETTINGS = 2

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# auto: text on a terminal, JSON lines otherwise (ticketflow.runtime.logs says why).
LogFormatSetting = Literal["auto", "json", "text"]

S = TypeVar("S", bound=BaseSettings)


def _host_port(value: str) -> str:
    try:
        parse_address(value)
    except ValueError:
        # parse_address quotes the text it refuses; a settings message never echoes a value.
        raise ValueError("expected host:port with a port in 1..65535") from None
    return value


# An address to reach or bind, "host:port" (or "[v6]:port").
HostPort = Annotated[str, AfterValidator(_host_port)]


def env_var(field: str) -> str:
    """The environment variable of a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


class ServiceSettings(BaseSettings):
    """What every service reads: where Temporal is, how much to log and how, where to serve
    metrics."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    temporal_address: HostPort = "127.0.0.1:7233"
    namespace: str = Field("default", min_length=1)
    log_level: LogLevel = "INFO"
    log_format: LogFormatSetting = "auto"
    # Prometheus metrics at http://<host>:<port>/metrics; no port: no metrics server.
    metrics_host: str = Field("127.0.0.1", min_length=1)
    metrics_port: int | None = Field(None, gt=0, lt=65536)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` of the metrics server, or None when metrics are off."""
        if self.metrics_port is None:
            return None
        host = f"[{self.metrics_host}]" if ":" in self.metrics_host else self.metrics_host
        return f"{host}:{self.metrics_port}"


def settings_problems(err: ValidationError) -> list[str]:
    """One line per problem, each naming its variable; values are left out (tokens, passwords)."""
    lines = []
    for problem in err.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        loc: Sequence[Any] = problem.get("loc") or ()
        lines.append(f"{env_var(str(loc[0]))}: {message}" if loc else message)
    return lines


def load_settings(cls: type[S], prog: str, *, overrides: Mapping[str, Any] | None = None) -> S:
    """Build ``cls`` from the environment, or exit with ``EXIT_BAD_SETTINGS`` and say what to fix."""
    try:
        return cls(**dict(overrides or {}))
    except ValidationError as err:
        problems = "\n".join(f"  {line}" for line in settings_problems(err))
        print(
            f"{prog}: invalid settings:\n{problems}\n"
            f"{prog}: fix the variables above (`{prog} --help` lists them) and start again",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(EXIT_BAD_SETTINGS) from None
