"""What registration accepts (domain/rule_vocabulary.py) is exactly what the evaluators implement."""

from __future__ import annotations

from domain import rule_vocabulary as vocabulary
from streams.evaluation import fitness_metrics, fitness_simple, gaming


def test_condition_metrics():
    assert set(fitness_metrics._METRICS) == vocabulary.FITNESS_METRICS
    assert vocabulary.ACCUMULATING_FITNESS_METRICS <= vocabulary.FITNESS_METRICS
    assert all(alias_of in vocabulary.FITNESS_METRICS for alias_of in vocabulary.FITNESS_METRIC_ALIASES.values())


def test_simplified_metrics():
    assert set(fitness_simple._SIMPLE_METRICS) == vocabulary.SIMPLE_FITNESS_METRICS
    assert set(gaming._SIMPLE_VALUES) == vocabulary.SIMPLE_GAMING_METRICS


def test_gaming_competitive_metrics_are_all_scored():
    records = [{"match_id": "1", "kills": 1, "deaths": 1, "assists": 1, "hero_damage": 1, "win": True}]
    for metric in vocabulary.GAMING_COMPETITIVE_METRICS:
        assert gaming._competitive_metric(metric) == metric
        assert gaming._competitive_score(metric, records) > 0
