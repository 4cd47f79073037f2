"""What one successful AI call produced, with the accounting the LAST file records."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

# An answer larger than this is refused rather than held in memory, whatever the transport.
MAX_ANSWER_BYTES = 32 * 1024 * 1024


@dataclass
class Completion:
    text: str
    model: str
    provider: str                       # "openai" | "anthropic" | "kserve" | "echo"
    prompt_tokens: int | None           # from the response's usage; None when it has none
    completion_tokens: int | None
    latency_ms: float                   # request sent -> answer complete
    time_to_first_token_ms: float | None = None   # only when streamed
    started_at: str | None = None       # when the request was sent (RFC 3339 UTC, ms): an AI span's start

    def accounting(self) -> dict:
        """The fields a task result's metadata["ai"] carries (everything but the text)."""
        # Spelled out: dataclasses.asdict deep-copies field by field, a cost on every call.
        return {"model": self.model, "provider": self.provider, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "latency_ms": self.latency_ms,
                "time_to_first_token_ms": self.time_to_first_token_ms, "started_at": self.started_at}


def utc_stamp() -> str:
    """Now as the LAST file writes times: RFC 3339 UTC with milliseconds and a Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
