"""The one-line verdict under the table, worked by hand; and the heartbeat of long stages."""

import pytest

from unlearnbench.suites.common import MetricRow
from unlearnbench.verdict import gap_closed, verdict

ROWS = [MetricRow("forget_probability", "lower", "behavior", ""), MetricRow("mia_auc", "oracle", "privacy", ""),
        MetricRow("forget_quality_n", "info", "behavior", "", count=True),
        MetricRow("retain_rouge", "higher", "utility", ""), MetricRow("world_facts", "higher", "utility", ""),
        MetricRow("rte", "lower", "utility", "")]


def test_gap_closed_is_the_share_of_the_original_to_oracle_distance_covered():
    assert gap_closed(0.5, 1.0, 0.0) == pytest.approx(0.5)
    assert gap_closed(0.0, 1.0, 0.0) == pytest.approx(1.0)
    assert gap_closed(-0.5, 1.0, 0.0) == pytest.approx(0.5)  # overshooting the oracle counts as distance too
    assert gap_closed(1.5, 1.0, 0.0) == pytest.approx(-0.5)  # further from the oracle than the original
    assert gap_closed(0.3, 0.2, 0.2) is None  # nothing to close


def test_the_verdict_is_the_median_gap_closed_and_the_median_utility_drift():
    metrics = {"forget_probability": 0.25, "mia_auc": 0.9, "forget_quality_n": 40, "retain_rouge": 0.45,
               "world_facts": 0.8, "rte": 12.0}
    reference = {"original": {"forget_probability": 1.0, "mia_auc": 1.0, "retain_rouge": 0.5, "world_facts": 0.8},
                 "oracle": {"forget_probability": 0.0, "mia_auc": 0.5, "retain_rouge": 0.5, "world_facts": 0.8}}
    # forgetting: 1 - 0.25/1 = 0.75 and 1 - 0.4/0.5 = 0.2 -> median 0.475; utility: |0.45-0.5|/0.5 = 0.1 and 0 -> 0.05
    line = verdict(metrics, reference, ROWS)
    assert line == ("Forgetting: 48% of the way from the original to the oracle (median of 2 behavior/privacy "
                    "metrics where they differ); utility: within 5.0% of the oracle (median of 2 metrics).")
    assert verdict(metrics, {}, ROWS) is None


def test_a_long_stage_without_a_terminal_prints_a_heartbeat_with_an_eta():
    from unlearnbench.progress import heartbeat

    assert heartbeat("scoring", 40, 120, 60.0) == "scoring: 40/120 after 60 s, about 120 s left"
    assert heartbeat("scoring", 0, 120, 5.0) == "scoring: 0/120 after 5 s"
