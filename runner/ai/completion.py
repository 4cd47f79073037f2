"""What one successful AI call produced, with the accounting the LAST file records."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Completion:
    text: str
    model: str
    provider: str                       # "openai" | "anthropic" | "echo"
    prompt_tokens: int | None           # from the response's usage; None when it has none
    completion_tokens: int | None
    latency_ms: float                   # request sent -> answer complete
    time_to_first_token_ms: float | None = None   # only when streamed

    def accounting(self) -> dict:
        """The fields a task result's metadata["ai"] carries (everything but the text)."""
        fields = asdict(self)
        del fields["text"]
        return fields
