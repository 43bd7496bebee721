from core.runs.progress import Progress


def test_done_of_total_percent_and_time_left_at_the_rate_so_far():
    p = Progress(done=120, total=300, elapsed_s=12)
    assert p.percent == 40.0 and p.seconds_left == 18
    assert p.line() == "120 of 300 (40%), about 18 s left"
    assert Progress(100, 4000, 60).line() == "100 of 4000 (2.5%), about 39 min left"


def test_edges_nothing_done_nothing_to_do_and_overshoot():
    assert Progress(0, 50, 3).seconds_left is None and Progress(0, 50, 3).line() == "0 of 50 (0%)"
    assert Progress(0, 0, 1).percent == 100.0 and Progress(0, 0, 1).line() == "0 of 0 (100%)"
    assert Progress(7, 5, 2).percent == 100.0  # more done than was known at the start
