"""The AI client's configuration, read from the RUNNER_AI_* environment variables.

Invalid values raise ValueError naming the variable, the value and what was expected.
The API key is kept out of the dataclass's repr so it cannot reach a log by accident.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runner import settings

PROVIDERS = ("openai", "anthropic", "echo")
DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "echo": "echo",
}
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0

# Every variable with its default, for the README and for `--help` texts.
VARIABLES = {
    "RUNNER_AI_SERVICE_URL": "unset: the offline echo provider answers",
    "RUNNER_AI_PROVIDER": "echo without a URL, openai with one",
    "RUNNER_AI_API_KEY": "unset (no key sent)",
    "RUNNER_AI_MODEL": "the provider's default: " + ", ".join(f"{p}={m}" for p, m in DEFAULT_MODELS.items()),
    "RUNNER_AI_MAX_CONCURRENCY": str(DEFAULT_MAX_CONCURRENCY),
    "RUNNER_AI_REQUESTS_PER_MINUTE": "unset (no limit)",
    "RUNNER_AI_TOKENS_PER_MINUTE": "unset (no limit)",
    "RUNNER_AI_CONNECT_TIMEOUT": f"{DEFAULT_CONNECT_TIMEOUT:g} seconds",
    "RUNNER_AI_READ_TIMEOUT": f"{DEFAULT_READ_TIMEOUT:g} seconds",
}


@dataclass(frozen=True)
class AIConfig:
    provider: str = "echo"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ValueError(f"AI provider {self.provider!r}: expected one of {', '.join(PROVIDERS)}")
        if self.provider != "echo" and not self.base_url:
            raise ValueError(f"AI provider {self.provider!r} needs a service URL (RUNNER_AI_SERVICE_URL)")
        if self.max_concurrency < 1:
            raise ValueError(f"AI max_concurrency {self.max_concurrency!r}: expected at least 1")
        if self.api_key is not None:
            _check_api_key(self.api_key)

    @property
    def default_model(self) -> str:
        return self.model or DEFAULT_MODELS[self.provider]


def _check_api_key(key: str) -> None:
    """Refuse a key that cannot be an HTTP header value: printable ASCII only.

    A control character (a newline pasted with the key) makes requests refuse the header
    with a message that quotes it, so the key would reach task errors and the LAST file.
    The message names the variable and the position, never the value.
    """
    for position, char in enumerate(key, 1):
        if not " " <= char <= "~":
            kind = "a control character" if char.isascii() or not char.isprintable() else "a non-ASCII character"
            raise ValueError(f"RUNNER_AI_API_KEY: expected printable ASCII characters only, "
                             f"found {kind} at position {position} of {len(key)}")


def _service_url(environ) -> str | None:
    raw = settings.text("RUNNER_AI_SERVICE_URL", environ)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value itself may carry credentials (user:pass@host); name only its scheme.
        raise ValueError(
            "RUNNER_AI_SERVICE_URL: expected an http:// or https:// base URL with a host, "
            "including the API version prefix (e.g. http://127.0.0.1:8000/v1)"
        )
    return raw.rstrip("/")


def config_from_environment(environ=os.environ) -> AIConfig:
    """The configuration the RUNNER_AI_* variables describe (read anew at each call)."""
    url = _service_url(environ)
    provider = (settings.text("RUNNER_AI_PROVIDER", environ) or ("openai" if url else "echo")).lower()
    if provider not in PROVIDERS:
        raise ValueError(f"RUNNER_AI_PROVIDER={provider!r}: expected one of {', '.join(PROVIDERS)}")
    if provider != "echo" and url is None:
        raise ValueError(f"RUNNER_AI_PROVIDER={provider!r} needs RUNNER_AI_SERVICE_URL (the base URL, e.g. http://127.0.0.1:8000/v1)")
    return AIConfig(
        provider=provider,
        base_url=url,
        api_key=settings.text("RUNNER_AI_API_KEY", environ),
        model=settings.text("RUNNER_AI_MODEL", environ),
        max_concurrency=settings.integer("RUNNER_AI_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, environ),
        requests_per_minute=settings.integer("RUNNER_AI_REQUESTS_PER_MINUTE", None, environ),
        tokens_per_minute=settings.integer("RUNNER_AI_TOKENS_PER_MINUTE", None, environ),
        connect_timeout=settings.number("RUNNER_AI_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, environ, above_minimum=True),
        read_timeout=settings.number("RUNNER_AI_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, environ, above_minimum=True),
    )
