"""Rate limiter arithmetic with an injected clock: pacing, bursts, per-chat limits, pauses."""

from __future__ import annotations

from bisect import bisect_left

import pytest

from notifications.ratelimit import DEFAULT_LIMITS, RateLimit, RateLimiter, TokenBucket, paced
from tests.fakes.messenger import FakeClock


def sends_at(limiter: RateLimiter, clock: FakeClock, chats: list[str]) -> list[float]:
    """Reserve for each chat in turn, as a worker would, sleeping as told."""
    times = []
    for chat in chats:
        clock.advance(limiter.reserve(chat))
        times.append(round(clock.monotonic(), 6))
    return times


def test_overall_rate_paces_evenly_without_a_burst():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=20), clock.monotonic)
    times = sends_at(limiter, clock, [str(i) for i in range(41)])
    assert times[:3] == [0.0, 0.05, 0.1]
    assert times[-1] == pytest.approx(2.0)  # 41 messages = 40 intervals of 1/20 s


def test_burst_allows_that_many_at_once_then_the_steady_rate():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=10, burst=5), clock.monotonic)
    times = sends_at(limiter, clock, [str(i) for i in range(7)])
    assert times == [0.0] * 5 + [0.1, 0.2]


def test_in_any_window_no_more_than_rate_times_length_plus_burst():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=30, burst=3), clock.monotonic)
    times = sends_at(limiter, clock, [str(i) for i in range(300)])
    for start in times:
        in_window = sum(1 for t in times if start <= t < start + 1.0)
        assert in_window <= 30 + 3


def test_telegram_defaults_one_per_second_to_one_chat_while_others_flow():
    clock = FakeClock()
    limiter = RateLimiter(DEFAULT_LIMITS["telegram"], clock.monotonic)
    assert sends_at(limiter, clock, ["a", "a"]) == [0.0, 1.0]
    clock.advance(0.5)  # 1.5 s
    times = sends_at(limiter, clock, ["b", "c", "a"])
    assert times[:2] == [1.5, pytest.approx(1.5 + 1 / 30)]
    assert times[2] == 2.0  # "a" waits for its own second, not for the others


def test_idle_time_refills_only_up_to_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=2, burst=2), clock.monotonic)
    sends_at(limiter, clock, ["x"] * 4)
    clock.advance(60)
    start = clock.monotonic()
    times = [t - start for t in sends_at(limiter, clock, ["x"] * 4)]
    assert times == [0.0, 0.0, 0.5, 1.0]


def test_pause_holds_the_whole_channel_back():
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(per_second=30), clock.monotonic)
    limiter.pause(7)
    assert limiter.reserve("a") == 7
    unlimited = RateLimiter(DEFAULT_LIMITS["web"], clock.monotonic)
    assert [unlimited.reserve("a") for _ in range(100)] == [0.0] * 100
    unlimited.pause(3)
    assert unlimited.reserve("a") == 3


def test_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, burst=0)


def test_paced_bursts_only_by_the_headroom_so_no_second_holds_more_than_the_limit():
    assert paced(RateLimit(per_second=30, per_chat_per_second=1)).burst == 1
    assert paced(RateLimit(per_second=20)).burst == 1
    fast = paced(RateLimit(per_second=1000, per_chat_per_second=1))
    assert (fast.per_second, fast.burst, fast.per_chat_burst) == (990, 10, 1)
    clock = FakeClock()
    limiter = RateLimiter(fast, clock.monotonic)
    times = []
    for i in range(3000):
        clock.advance(limiter.reserve(str(i)))
        if i % 100 == 99:
            clock.advance(0.02)  # a sender that woke up late: it catches up, a little
        times.append(clock.monotonic())
    worst = max(bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    assert worst <= 1000
    # a late sender gets ~10 ms of each 20 ms stall back (the burst); without it every
    # stall would cost all of its 20 ms (3.63 s in all)
    assert times[-1] - times[0] < 3000 / 990 + 30 * 0.0125
