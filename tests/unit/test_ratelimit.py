"""The sliding-window pacer never lets any window overflow (with a fake clock)."""

from __future__ import annotations

import pytest

from core.http.limiter import SlidingWindowPacer, parse_windows


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_parse_windows():
    assert parse_windows("20:1,100:120") == [(20, 1.0), (100, 120.0)]
    assert parse_windows("") == [] and parse_windows("x:1, 5:0") == []


async def test_dev_key_limits_hold_for_300_requests():
    clock = FakeClock()
    pacer = SlidingWindowPacer([(20, 1), (100, 120)], clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(300):
        await pacer.acquire()
        starts.append(clock.now)
    for count, seconds in ((20, 1), (100, 120)):
        for i in range(len(starts) - count):
            assert starts[i + count] - starts[i] >= seconds  # never count+1 in one window
    # The minimum the limits allow is 244 s: 100 requests in 4 s (20/s), the next 100 from
    # 120 s, the last 100 from 240 s. The pacer's 0.1 s margin per window costs about 1 s.
    assert 244 <= starts[-1] <= 246


async def test_counts_from_the_server_are_respected():
    clock = FakeClock()
    pacer = SlidingWindowPacer([(10, 10)], clock=clock, sleep=clock.sleep)
    pacer.observe("10:10", "10:10")  # another process already used the whole window
    waited = await pacer.acquire()
    assert waited == pytest.approx(10.1)
    pacer.observe("3:1", None)
    assert pacer.windows == [(3, 1.0)]
