"""What each execution mode changes.

normal  -- tasks run as written.
dream   -- AI tasks sample creatively: temperature 1.2 and top_p 0.95 unless the task's
           own parameters set them (parameters.temperature / top_p, or parameters.sampling).
explore -- each AI task asks for parameters.explore_samples alternatives (default 3, at
           most 10), sample k with temperature 0.7 + 0.2*k unless the task sets one; all
           are kept and one is selected: the longest text, ties to the earliest sample.
chaos   -- a seeded generator gives a fault to a fraction of attempts
           (RUNNER_CHAOS_FAULT_RATE, default 0.2) and shuffles ready tasks of equal
           priority. Each fault is a pure function of (seed, task id, attempt number), so
           thread timing cannot change which attempts get one: same seed, same faults.

In every mode the provider gets what its API accepts: temperatures above its maximum
(OpenAI-compatible 2.0, Anthropic 1.0) are lowered to it, and Anthropic gets no top_p
next to a temperature (so dream sends it temperature 1.0 alone). Given the provider,
`sampling_for` returns the values sent, which the task's metadata.ai.sampling records.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from runner.errors import ParameterError

DREAM_SAMPLING = {"temperature": 1.2, "top_p": 0.95}
EXPLORE_DEFAULT_SAMPLES = 3
EXPLORE_MAX_SAMPLES = 10
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "top_k", "seed", "stop")

FAULT_KINDS = ("failure", "latency", "timeout")
CHAOS_LATENCY_SECONDS = (0.01, 0.25)    # injected extra latency, uniform in this range
CHAOS_STALL_SECONDS = 0.5               # an injected timeout: the attempt stalls, the deadline comes this soon


def task_sampling(parameters: dict) -> dict:
    """The sampling a task asks for itself: parameters.sampling, then top-level keys."""
    sampling = dict(parameters.get("sampling") or {}) if isinstance(parameters.get("sampling"), dict) else {}
    for key in SAMPLING_KEYS:
        if key in parameters:
            sampling[key] = parameters[key]
    return sampling


def sampling_for(mode: str, parameters: dict, sample: int = 0, provider: str | None = None) -> dict:
    """The sampling of one AI call in `mode`; the task's own parameters win.

    With the provider: the settings it will be sent, within its ranges (ParameterError
    naming a bad setting); without, the settings asked for.
    """
    own = task_sampling(parameters)
    if mode == "dream":
        wanted = {**DREAM_SAMPLING, **own}
    elif mode == "explore":
        wanted = {"temperature": round(0.7 + 0.2 * sample, 2), **own}
    else:
        wanted = own
    if provider is None:
        return wanted
    from runner.ai import sent_sampling     # here: the AI client (and requests) load only for AI tasks
    return sent_sampling(provider, wanted)


def explore_samples(parameters: dict) -> int:
    raw = parameters.get("explore_samples", EXPLORE_DEFAULT_SAMPLES)
    if type(raw) is not int or not 1 <= raw <= EXPLORE_MAX_SAMPLES:
        raise ParameterError(f"parameters.explore_samples: expected an integer in [1, {EXPLORE_MAX_SAMPLES}], found {raw!r}")
    return raw


def select_alternative(texts: list[str]) -> int:
    """Explore mode's rule: the longest text; among equally long ones, the earliest."""
    return max(range(len(texts)), key=lambda k: (len(texts[k]), -k))


@dataclass(frozen=True)
class Fault:
    kind: str          # failure | latency | timeout
    detail: str
    delay: float = 0.0


class ChaosPlan:
    """Which attempts get a fault; a pure function of (seed, task id, attempt number)."""

    def __init__(self, seed: int, rate: float):
        self.seed = seed
        self.rate = rate

    def _generator(self, *parts) -> random.Random:
        import hashlib

        digest = hashlib.sha256("\x1f".join(str(p) for p in (self.seed, *parts)).encode()).digest()
        return random.Random(int.from_bytes(digest[:16], "big"))

    def fault_for(self, task_id: str, attempt: int) -> Fault | None:
        rng = self._generator("fault", task_id, attempt)
        if rng.random() >= self.rate:
            return None
        kind = FAULT_KINDS[rng.randrange(len(FAULT_KINDS))]
        if kind == "failure":
            return Fault("failure", "injected failure")
        if kind == "latency":
            delay = round(rng.uniform(*CHAOS_LATENCY_SECONDS), 3)
            return Fault("latency", f"injected {delay:.3f} s of latency", delay)
        return Fault("timeout", f"injected stall: the attempt times out after {CHAOS_STALL_SECONDS} s",
                     CHAOS_STALL_SECONDS)

    def tie_breaker(self) -> random.Random:
        """The generator that shuffles ready tasks of equal priority."""
        return self._generator("order")


def new_seed() -> int:
    return random.SystemRandom().randrange(1 << 32)
