"""Competitive ranking: the acceptance cases of spec/evaluation.md §7 as given, plus edge cases."""

from __future__ import annotations

import pytest

from streams.ranking import BELOW_CUTOFF, NO_SCORE, NOT_ELIGIBLE, RankingEntry, rank, winners

NOW = 1_750_000_000


def t(minutes_ago: int) -> int:
    return NOW - 60 * minutes_ago


def entries(*rows):
    return [RankingEntry(subject, score, at) for subject, score, at in rows]


def order(outcomes):
    return [o.subject for o in outcomes]


def test_case_1_score_descending():
    assert order(rank(entries(("a", 100, t(3)), ("b", 500, t(2)), ("c", 250, t(1))), 1)) == ["b", "c", "a"]


def test_case_2_ties_by_earliest_evidence():
    assert order(rank(entries(("a", 100, t(1)), ("b", 100, t(3)), ("c", 100, t(2))), 1)) == ["b", "c", "a"]


def test_case_3_null_scores_last():
    outcomes = rank(entries(("a", None, t(3)), ("b", 50, t(2)), ("c", None, t(1))), 3)
    assert order(outcomes) == ["b", "a", "c"]
    assert [o.pass_ for o in outcomes] == [True, False, False]  # null scores never win (spec §8.11)
    assert outcomes[1].reason == NO_SCORE


def test_case_4_top_1():
    outcomes = rank(entries(("a", 100, t(3)), ("b", 500, t(2)), ("c", 250, t(1))), 1)
    assert winners(outcomes) == ("b",)
    assert [o.reason for o in outcomes] == [None, BELOW_CUTOFF, BELOW_CUTOFF]


def test_case_5_top_2_in_rank_order():
    rows = (("a", 100, t(3)), ("b", 500, t(2)), ("c", 250, t(1)), ("d", 300, t(0)))
    assert winners(rank(entries(*rows), 2)) == ("b", "d")


def test_case_6_top_n_larger_than_the_field():
    outcomes = rank(entries(("a", 100, t(2)), ("b", 200, t(1))), 5)
    assert winners(outcomes) == ("b", "a")


def test_case_7_single_entry():
    assert winners(rank(entries(("a", 42, t(0))), 1)) == ("a",)


def test_case_8_tie_goes_to_the_earlier():
    assert winners(rank(entries(("a", 100, t(1)), ("b", 100, t(5)), ("c", 50, t(0))), 1)) == ("b",)


def test_case_9_all_zero():
    assert winners(rank(entries(("a", 0, t(3)), ("b", 0, t(2)), ("c", 0, t(1))), 1)) == ("a",)


def test_identical_timestamps_break_on_lower_cased_address():
    rows = (("0xBB", 10, t(1)), ("0xaa", 10, t(1)), ("0xAc", 10, t(1)))
    assert order(rank(entries(*rows), 1)) == ["0xaa", "0xac", "0xbb"]
    assert order(rank(list(reversed(entries(*rows))), 1)) == ["0xaa", "0xac", "0xbb"]


def test_unknown_evidence_time_sorts_after_known():
    assert winners(rank(entries(("a", 10, None), ("b", 10, t(1))), 1)) == ("b",)


def test_null_scores_rank_last_even_when_top_n_is_larger():
    outcomes = rank(entries(("a", None, t(9)), ("b", None, t(8))), 5)
    assert winners(outcomes) == ()
    assert order(outcomes) == ["a", "b"]


def test_no_evidence_at_all():
    assert rank([], 3) == ()


def test_failed_verdicts_with_a_score_never_win():
    outcomes = rank([RankingEntry("a", 999, t(1), eligible=False), RankingEntry("b", 1, t(1))], 1)
    assert order(outcomes) == ["b", "a"]
    assert (outcomes[1].pass_, outcomes[1].reason) == (False, NOT_ELIGIBLE)


def test_same_subject_in_two_casings_counts_once():
    outcomes = rank(entries(("0xAA", 5, t(1)), ("0xaa", 9, t(2)), ("0xbb", 7, t(1))), 2)
    assert order(outcomes) == ["0xaa", "0xbb"]
    assert outcomes[0].score == 9


def test_ranks_are_positions():
    outcomes = rank(entries(("a", 3, 1), ("b", 2, 1), ("c", None, 1)), 1)
    assert [o.rank for o in outcomes] == [1, 2, 3]


@pytest.mark.parametrize("top_n", [0, -1])
def test_non_positive_top_n_selects_nobody(top_n):
    assert winners(rank(entries(("a", 1, 1)), top_n)) == ()


def test_outcome_does_not_depend_on_input_order():
    import itertools

    rows = entries(("0xd", 5, 3), ("0xA", 5, 3), ("0xc", 7, 9), ("0xb", None, 1), ("0xe", 5, 2))
    results = {rank(list(p), 2) for p in itertools.permutations(rows)}
    assert len(results) == 1
    assert winners(results.pop()) == ("0xc", "0xe")
