"""The duration histograms of the ratings aggregates: medians within the documented
precision of the exact ones, and the stored text form round-trips."""

from __future__ import annotations

import random
from collections import Counter
from statistics import median

from domain.storage.report_daily import (
    add_hist,
    bucket,
    dense_counter,
    hist_median,
    hist_text,
    parse_hist,
    tolerance,
)


def test_histogram_medians_are_within_the_tolerance_of_the_exact_ones():
    rnd = random.Random(5)
    for n in (1, 2, 3, 10, 101, 1000):
        for spread in (0.01, 1.0, 3.0):
            hours = [rnd.lognormvariate(2.0, spread) for _ in range(n)] + [0.0] * (n % 3)
            exact = median(hours)
            found = hist_median(Counter(bucket(h) for h in hours))
            assert found is not None
            assert abs(found - exact) <= tolerance(exact) + 1e-9, (n, spread, found, exact)
    assert hist_median(Counter()) is None


def test_the_text_form_round_trips_and_adds_up():
    hist = Counter({3: 2, 7: 1, 40: 5})
    text = hist_text(hist)
    assert text.split()[0] == "3" and parse_hist(text) == hist
    into: list[int] = []
    add_hist(into, text)
    add_hist(into, hist_text(Counter({1: 1, 40: 1})))
    assert dense_counter(into) == Counter({1: 1, 3: 2, 7: 1, 40: 6})
    assert hist_text(Counter()) == "" and parse_hist("") == {}
