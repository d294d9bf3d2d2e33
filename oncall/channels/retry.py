"""Retries of one send (SPEC §5): at least 3 tries, jittered exponential back-off, the
provider's `retry_after` / `Retry-After` honoured, never a wait longer than `max_wait` (30 s).
Only a failure the provider may get over (`Delivery.retryable`: 429, 5xx, a time-out) is
tried again; a refusal that will not change is not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from oncall.channels.base import Delivery

Sleep = Callable[[float], Awaitable[None]]


async def retrying(
    attempt: Callable[[], Awaitable[Delivery]], attempts: int, max_wait: float, sleep: Sleep
) -> Delivery:
    """`attempt` until it delivers, gives up for good, or `attempts` tries are spent; the last
    answer is returned either way."""
    backoff = wait_random_exponential(multiplier=0.5, max=max_wait)

    def wait(state: RetryCallState) -> float:
        last = state.outcome.result() if state.outcome and not state.outcome.failed else None
        if isinstance(last, Delivery) and last.retry_after is not None:
            return min(float(last.retry_after), max_wait)
        return float(backoff(state))

    runs = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_result(lambda d: not d.ok and d.retryable),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    result: Delivery = await runs(attempt)
    return result
