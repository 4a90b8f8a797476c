"""List prices and the billing arithmetic of one run (no settings, no servers: pure).

Every price is the us-east-1 list price in USD, as each vendor publishes it:

- AWS Step Functions pricing: Standard bills state transitions; Express bills requests and
  duration, "rounded up to the nearest 100ms", at the memory the run used, "billed in 64-MB
  chunks" (the least is one chunk, 64 MB).
- AWS Lambda pricing (x86, the first tier of GB-seconds): requests and duration, rounded up to
  the nearest 1 ms, at the function's configured memory.
- Temporal Cloud pricing, pay-as-you-go Actions (list price): USD 50 per million on the
  Developer plan at any volume and for a Business plan's first 5M a month, down to USD 25 per
  million for the Business plan's actions from 100M to 200M a month (the lowest published
  tier). The plan's own fee and storage are not included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MB_PER_GB = 1024  # AWS bills GB-seconds of 1,024 MB
PER_MILLION = 1_000_000

STANDARD_PER_TRANSITION = 0.025 / 1000
EXPRESS_PER_REQUEST = 1.00 / PER_MILLION
EXPRESS_PER_GB_SECOND = 0.0000166667
EXPRESS_UNIT_MS = 100
EXPRESS_MEMORY_CHUNK_MB = 64
LAMBDA_PER_REQUEST = 0.20 / PER_MILLION
LAMBDA_PER_GB_SECOND = 0.0000166667
TEMPORAL_PER_ACTION = {"entry": 50 / PER_MILLION, "lowest published": 25 / PER_MILLION}

EXPRESS_FORMULA = (
    "USD 1.00 per million requests + ceil(run ms / 100) x 0.1 s x ceil(memory / 64 MB) x "
    "64 MB / 1024 x USD 0.0000166667 per GB-second (AWS Step Functions pricing, us-east-1: "
    "duration rounded up to the nearest 100 ms, memory billed in 64-MB chunks)")
LAMBDA_FORMULA = (
    "per invocation USD 0.20 per million + ceil(ms) / 1000 x memory / 1024 x USD 0.0000166667 "
    "per GB-second (AWS Lambda pricing, us-east-1, x86: duration rounded up to 1 ms)")
STANDARD_FORMULA = "transitions x USD 0.025 per 1,000 (AWS Step Functions pricing, us-east-1)"
TEMPORAL_FORMULA = (
    "actions x USD 50 per million (Temporal Cloud list price, pay-as-you-go: the Developer plan, "
    "and a Business plan's first 5M a month) or x USD 25 per million (the Business plan's "
    "actions from 100M to 200M a month, the lowest published tier); plan fee and storage "
    "not included")


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation: how long it ran and its function's configured memory."""

    duration_ms: float
    memory_mb: int


def _micros(ms: float) -> int:
    # Whole microseconds (what the write model keeps), so that 1,200 ms is exactly 12 units.
    return round(ms * 1000)


def express_units(run_ms: float) -> int:
    """The 100 ms units an Express run is billed: its duration rounded up (at least one)."""
    return max(1, -(-_micros(run_ms) // (EXPRESS_UNIT_MS * 1000)))


def express_memory_mb(memory_mb: int) -> int:
    """The memory an Express run is billed at: whole 64 MB chunks (at least one)."""
    return max(1, -(-memory_mb // EXPRESS_MEMORY_CHUNK_MB)) * EXPRESS_MEMORY_CHUNK_MB


def express_usd(run_ms: float, memory_mb: int = EXPRESS_MEMORY_CHUNK_MB) -> float:
    """One Express run: its request and its duration."""
    seconds = express_units(run_ms) * EXPRESS_UNIT_MS / 1000
    gb_seconds = seconds * express_memory_mb(memory_mb) / MB_PER_GB
    return EXPRESS_PER_REQUEST + gb_seconds * EXPRESS_PER_GB_SECOND


def standard_usd(transitions: int) -> float:
    """One Standard run: its state transitions."""
    return transitions * STANDARD_PER_TRANSITION


def lambda_billed_ms(duration_ms: float) -> int:
    """Lambda's billed duration: rounded up to the next millisecond (at least one)."""
    return max(1, -(-_micros(duration_ms) // 1000))


def lambda_usd(invocations: Iterable[Invocation]) -> float:
    """The Lambda invocations of one run: a request each, and GB-seconds at their memory."""
    total = 0.0
    for call in invocations:
        gb_seconds = lambda_billed_ms(call.duration_ms) / 1000 * call.memory_mb / MB_PER_GB
        total += LAMBDA_PER_REQUEST + gb_seconds * LAMBDA_PER_GB_SECOND
    return total


def temporal_usd(actions: int, tier: str) -> float:
    """One workflow's actions at a Temporal Cloud list price (see TEMPORAL_PER_ACTION)."""
    return actions * TEMPORAL_PER_ACTION[tier]


def per_million(usd: float) -> float:
    return usd * PER_MILLION
