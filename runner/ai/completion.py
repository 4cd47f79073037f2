"""What one successful AI call produced, with the accounting the LAST file records."""
from __future__ import annotations

from dataclasses import dataclass

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

    def accounting(self) -> dict:
        """The fields a task result's metadata["ai"] carries (everything but the text)."""
        # Spelled out: dataclasses.asdict deep-copies field by field, a cost on every call.
        return {"model": self.model, "provider": self.provider, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "latency_ms": self.latency_ms,
                "time_to_first_token_ms": self.time_to_first_token_ms}
