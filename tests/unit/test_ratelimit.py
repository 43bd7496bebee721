"""The sliding-window pacer never lets any window overflow (with a fake clock), and neither
does the shared budget's rule (``next_slot``), which still lets a short run burst."""

from __future__ import annotations

import pytest

from core.http.limiter import (
    SlidingWindowPacer,
    next_slot,
    parse_windows,
    pushed_back,
    uncounted,
    window_span,
)


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


def _schedule(windows: list[tuple[int, float]], requests: int) -> list[float]:
    log: list[float] = []
    for _ in range(requests):
        log.append(next_slot(log, windows, 0.0))
    return log


def _most_in(times: list[float], seconds: float) -> int:
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


@pytest.mark.parametrize(("windows", "requests"), [
    ([(20, 1.0), (100, 120.0)], 300),  # a Riot development key
    ([(8, 1.0), (40, 8.0), (30, 4.0)], 200),
    ([(80, 1.0)], 400),  # a per-second plan
    ([(30, 60.0)], 90),  # CoinGecko's demo plan
    ([(1000, 1.0)], 3000),  # more than the log keeps: paced
])
def test_no_window_ever_holds_more_than_its_count(windows, requests):
    times = _schedule(windows, requests)
    assert times == sorted(times)
    for count, seconds in windows:
        # Even when every request reaches the provider up to 4 % of the window late (the margin),
        # whatever the others do: count+1 requests always span more than the window.
        slack = window_span(seconds) - seconds
        assert all(times[i + count] - times[i] >= seconds + slack - 1e-9 for i in range(len(times) - count))
        assert _most_in(times, seconds) <= count


def test_a_short_run_spends_a_long_window_at_once_and_a_long_run_gets_its_rate():
    times = _schedule([(20, 1.0), (100, 120.0)], 300)
    # 100 requests in 5 s (20 per second, two at a time), the next 100 from 120.25 s, the
    # last from 240.5 s: 1.5 s over the 244 s minimum the limits allow.
    assert times[99] < 5.2 and 120 < times[100] < 120.3
    assert 244 <= times[-1] <= 246
    assert _most_in(times, 0.1) <= 2  # a short window's tenth at a time
    minute = _schedule([(30, 60.0)], 30)
    assert minute == [0.0] * 30  # all at once: the window is long


def test_a_binding_per_second_plan_is_used_to_96_percent():
    times = _schedule([(80, 1.0)], 801)
    assert 800 / (times[-1] - times[0]) == pytest.approx(80 / 1.04)


def test_requests_the_provider_counted_beyond_ours_push_the_budget_back():
    log = [100.0]
    assert uncounted(log, [(3, 10.0)], now=101.0) == 2  # another application sent two more
    assert uncounted(log, [(1, 10.0)], now=101.0) == 0
    assert uncounted(log, [(3, 10.0)], now=130.0) == 3  # ours has left the window, theirs not
    pushed = pushed_back(log, [(3, 10.0)], 2, now=101.0)
    assert pushed == [100.0, 101.0, 101.0]
    assert next_slot(pushed, [(3, 10.0)], now=101.0) == pytest.approx(100.0 + window_span(10.0))
    paced = pushed_back([100.0], [(1000, 10.0)], 3, now=100.0)  # spaced as a paced window wants
    assert paced[1:] == pytest.approx([100.0, 100.0 + window_span(10) / 1000, 100.0 + 2 * window_span(10) / 1000])


def test_a_window_longer_than_the_log_reaches_is_not_reconciled():
    log = [float(t) for t in range(200)]  # the log is full and covers 200 s
    assert uncounted(log, [(5000, 600.0)], now=200.0) == 0
