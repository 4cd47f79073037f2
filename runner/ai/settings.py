"""The AI client's settings, read from the RUNNER_AI_* environment variables.

Invalid values raise ConfigurationError (a ValueError too) naming the variable, the value and what was expected.
The API key is kept out of the dataclass's repr so it cannot reach a log by accident.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from runner import settings
from runner.errors import ConfigurationError
from runner.settings import shown

PROVIDERS = ("openai", "anthropic", "kserve", "echo")
# kserve has none: an inference server serves the models it was given, under their names.
DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "echo": "echo",
}
# The URL schemes of each provider's transport.
HTTP_SCHEMES = ("http", "https")
GRPC_SCHEMES = ("grpc", "grpcs")
TLS_SCHEMES = ("https", "grpcs")
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0

# Every variable with its default, for the README and for `--help` texts.
VARIABLES = {
    "RUNNER_AI_SERVICE_URL": "unset: the offline echo provider answers",
    "RUNNER_AI_PROVIDER": "echo without a URL, kserve with a grpc:// or grpcs:// one, else openai",
    "RUNNER_AI_API_KEY": "unset (no key sent)",
    "RUNNER_AI_MODEL": "the provider's default: " + ", ".join(f"{p}={m}" for p, m in DEFAULT_MODELS.items())
                       + " (kserve has none)",
    "RUNNER_AI_CA_FILE": "unset: the system's CA certificates verify https:// and grpcs:// services",
    "RUNNER_AI_MAX_CONCURRENCY": str(DEFAULT_MAX_CONCURRENCY),
    "RUNNER_AI_REQUESTS_PER_MINUTE": "unset (no limit)",
    "RUNNER_AI_TOKENS_PER_MINUTE": "unset (no limit)",
    "RUNNER_AI_CONNECT_TIMEOUT": f"{DEFAULT_CONNECT_TIMEOUT:g} seconds",
    "RUNNER_AI_READ_TIMEOUT": f"{DEFAULT_READ_TIMEOUT:g} seconds",
}


@dataclass(frozen=True)
class AISettings:
    provider: str = "echo"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    ca_file: str | None = None      # PEM certificates that verify a TLS service, instead of the system's

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ConfigurationError(f"AI provider {shown(self.provider)}: expected one of {', '.join(PROVIDERS)}")
        if self.provider != "echo" and not self.base_url:
            raise ConfigurationError(f"AI provider {shown(self.provider)} needs a service URL (RUNNER_AI_SERVICE_URL)")
        if self.base_url:
            scheme = urlsplit(self.base_url).scheme
            wanted = GRPC_SCHEMES if self.provider == "kserve" else HTTP_SCHEMES
            if self.provider != "echo" and scheme not in wanted:
                raise ConfigurationError(f"AI provider {shown(self.provider)} needs a {' or '.join(s + '://' for s in wanted)} "
                                 f"service URL (RUNNER_AI_SERVICE_URL), found a {scheme}:// one")
            if self.ca_file is not None and scheme not in TLS_SCHEMES:
                raise ConfigurationError(f"RUNNER_AI_CA_FILE is set, but the service URL is plain {scheme}:// "
                                 "(the CA file verifies https:// and grpcs:// services)")
            if self.ca_file is not None:
                _check_ca_file(self.ca_file)
        if self.max_concurrency < 1:
            raise ConfigurationError(f"AI max_concurrency {self.max_concurrency!r}: expected at least 1")
        if self.api_key is not None:
            _check_api_key(self.api_key)

    @property
    def default_model(self) -> str | None:
        return self.model or DEFAULT_MODELS.get(self.provider)


def _check_api_key(key: str) -> None:
    """Refuse a key that cannot be an HTTP header value: printable ASCII only.

    A control character (a newline pasted with the key) makes requests refuse the header
    with a message that quotes it, so the key would reach task errors and the LAST file.
    The message names the variable and the position, never the value.
    """
    for position, char in enumerate(key, 1):
        if not " " <= char <= "~":
            kind = "a control character" if char.isascii() or not char.isprintable() else "a non-ASCII character"
            raise ConfigurationError(f"RUNNER_AI_API_KEY: expected printable ASCII characters only, "
                             f"found {kind} at position {position} of {len(key)}")


# A CA bundle is a few hundred KiB (the system's is ~220 KiB); more is not one.
MAX_CA_FILE_BYTES = 16 * 1024 * 1024
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def _service_url(environ) -> str | None:
    raw = settings.text("RUNNER_AI_SERVICE_URL", environ)
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError as error:      # "Invalid IPv6 URL": the value may hold credentials, not shown
        raise ConfigurationError(f"RUNNER_AI_SERVICE_URL: not a URL ({error})") from None
    if parts.scheme in GRPC_SCHEMES:
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.path.strip("/") or parts.query or parts.username:
            raise ConfigurationError("RUNNER_AI_SERVICE_URL: expected grpc://host:port or grpcs://host:port "
                             "(no path, no user), e.g. grpc://127.0.0.1:8001")
        return raw.rstrip("/")
    if parts.scheme not in HTTP_SCHEMES or not parts.hostname:
        # The value itself may carry credentials (user:pass@host); name only its scheme.
        raise ConfigurationError(
            "RUNNER_AI_SERVICE_URL: expected an http:// or https:// base URL with a host, "
            "including the API version prefix (e.g. http://127.0.0.1:8000/v1), "
            "or grpc://host:port for a KServe v2 inference server"
        )
    return raw.rstrip("/")


def _ca_file(environ) -> str | None:
    path = settings.text("RUNNER_AI_CA_FILE", environ)
    if path is not None and not os.path.isfile(path):
        raise ConfigurationError(f"RUNNER_AI_CA_FILE={path!r}: expected a readable file of PEM certificates")
    return path


def _check_ca_file(path: str) -> None:
    """A CA file must hold a PEM certificate: refused at configuration, not by the TLS
    library at the first call in its own words."""
    expected = f"RUNNER_AI_CA_FILE={path!r}: expected a readable file of PEM certificates"
    try:
        with open(path, "rb") as handle:
            head = handle.read(MAX_CA_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigurationError(f"{expected}: cannot read: {error.strerror or error}") from None
    if len(head) > MAX_CA_FILE_BYTES:
        raise ConfigurationError(f"{expected}, of at most {MAX_CA_FILE_BYTES} bytes")
    if PEM_CERTIFICATE not in head:
        raise ConfigurationError(f"{expected}; it holds no '-----BEGIN CERTIFICATE-----' block")


def settings_from_environment(environ=os.environ) -> AISettings:
    """The settings the RUNNER_AI_* variables describe (read anew at each call)."""
    url = _service_url(environ)
    inferred = "echo" if url is None else ("kserve" if urlsplit(url).scheme in GRPC_SCHEMES else "openai")
    provider = (settings.text("RUNNER_AI_PROVIDER", environ) or inferred).lower()
    if provider not in PROVIDERS:
        raise ConfigurationError(f"RUNNER_AI_PROVIDER={shown(provider)}: expected one of {', '.join(PROVIDERS)}")
    if provider != "echo" and url is None:
        raise ConfigurationError(f"RUNNER_AI_PROVIDER={shown(provider)} needs RUNNER_AI_SERVICE_URL (the base URL, e.g. http://127.0.0.1:8000/v1)")
    return AISettings(
        provider=provider,
        base_url=url,
        api_key=settings.text("RUNNER_AI_API_KEY", environ),
        model=settings.text("RUNNER_AI_MODEL", environ),
        max_concurrency=settings.integer("RUNNER_AI_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, environ),
        requests_per_minute=settings.integer("RUNNER_AI_REQUESTS_PER_MINUTE", None, environ),
        tokens_per_minute=settings.integer("RUNNER_AI_TOKENS_PER_MINUTE", None, environ),
        connect_timeout=settings.number("RUNNER_AI_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, environ, above_minimum=True),
        read_timeout=settings.number("RUNNER_AI_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, environ, above_minimum=True),
        ca_file=_ca_file(environ),
    )
