"""Gaming evaluator: the reference vectors of spec/evaluation.md §4.6 and every metric."""

from __future__ import annotations

import pytest

from streams.evaluation import evaluate, parse_challenge_rule

T0 = 1740830400  # 2025-03-01T12:00Z
G = [
    {"match_id": "1", "start_time": T0, "lobby_type": 7, "hero_id": 1, "kills": 10, "deaths": 2, "assists": 5,
     "result_for_player": "win", "ranked": True},
    {"match_id": "2", "start_time": T0 + 3600, "lobby_type": 0, "hero_id": 2, "kills": 3, "deaths": 6,
     "assists": 1, "result_for_player": "loss", "ranked": False},
    {"match_id": "3", "start_time": T0 + 7200, "lobby_type": 7, "hero_id": 1, "kills": 7, "deaths": 0,
     "assists": 9, "result_for_player": "win", "ranked": True},
    {"match_id": "4", "start_time": T0 + 10800, "lobby_type": 0, "hero_id": 3, "kills": 12, "deaths": 4,
     "assists": 4, "result_for_player": "win", "ranked": False},
]
PERIOD = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-08T00:00:00Z"}
FACEIT = [
    {"match_id": "f1", "platform": "faceit", "start_time": T0, "end_time": T0 + 2400, "game_mode": "5v5",
     "result_for_player": "win", "player_team": "a", "opponent_team": "b", "score": "16-12"},
    {"match_id": "f2", "platform": "faceit", "start_time": T0 + 3600, "end_time": T0 + 6000, "game_mode": "5v5",
     "result_for_player": "loss", "player_team": "a", "opponent_team": "c", "score": "10-16"},
]
RIOT = [
    {"match_id": "EUW_1", "game_creation": T0 * 1000, "queue_type": "RANKED_SOLO_5x5", "champion": "Ahri",
     "win": True, "kills": 8, "deaths": 3, "assists": 6},
    {"match_id": "EUW_2", "game_creation": (T0 + 3600) * 1000, "queue_type": "ARAM", "champion": "Ahri",
     "win": True, "kills": 20, "deaths": 9, "assists": 30},
    {"match_id": "EUW_3", "game_creation": (T0 - 30 * 86400) * 1000, "queue_type": "RANKED_SOLO_5x5",
     "champion": "Ahri", "win": True, "kills": 5, "deaths": 5, "assists": 5},
    {"match_id": "EUW_4", "game_creation": (T0 + 7200) * 1000, "queue_type": "RANKED_FLEX_SR",
     "champion": "Zed", "win": True, "kills": 11, "deaths": 2, "assists": 3},
]


def simple(metric, threshold, period, **extra):
    return {"rules": {"type": "gaming", "metric": metric, "threshold": threshold, "period": period, **extra}}


def run_gaming(records, params=None, proof=None, timeline=None, provider="opendota"):
    return evaluate(parse_challenge_rule(params, proof, timeline), {provider: records})


def test_g1_simple_wins_total():
    verdict = run_gaming(G, simple("wins", 3, "total", minMatches=2))
    assert (verdict.pass_, verdict.score) == (True, 3)


def test_g2_simple_kda_per_match():
    verdict = run_gaming(G, simple("kda", 4, "per_match"))
    assert (verdict.pass_, verdict.score) == (True, 7.04)
    assert verdict.metadata["total"] == 28.17


def test_g3_simple_kills_best_match():
    verdict = run_gaming(G, simple("kills", 12, "best_match"))
    assert (verdict.pass_, verdict.score) == (True, 12)


def test_g4_min_matches():
    verdict = run_gaming(G, simple("wins", 1, "total", minMatches=5))
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.reasons == ("Only 4 match(es) found, minimum required: 5",)


def test_simple_failure_reasons():
    assert run_gaming(G, simple("kills", 100, "total")).reasons == ("Total kills: 32, required: 100",)
    assert run_gaming(G, simple("kills", 100, "per_match")).reasons == (
        "Average kills per match: 8, required: 100",)
    assert run_gaming(G, simple("kills", 100, "best_match")).reasons == (
        "Best single-match kills: 12, required: 100",)
    # Differs from the original (`Unknown period type "season"`): refused at registration.
    assert run_gaming(G, simple("kills", 1, "season")).reasons == (
        "Challenge rule cannot be used: params.rules.period must be one of best_match, per_match, total, "
        "got 'season'",)


def test_g5_ranked_wins_in_period():
    verdict = run_gaming(G, {"minWins": 2, "rankedOnly": True, "period": PERIOD})
    assert (verdict.pass_, verdict.score, verdict.metadata["eligibleRecords"]) == (True, 2, 2)


def test_g6_not_enough_ranked_wins():
    verdict = run_gaming(G, {"minWins": 3, "rankedOnly": True, "period": PERIOD})
    assert (verdict.pass_, verdict.score) == (False, 2)
    assert verdict.reasons == ("Qualifying wins: 2/3 (ranked only) (within period)",)


def test_g7_win_streak():
    verdict = run_gaming(G, {"streakLength": 2})
    assert (verdict.pass_, verdict.score, verdict.metadata["maxStreak"]) == (True, 2, 2)
    failing = run_gaming(G, {"streakLength": 3})
    assert failing.reasons == ("Best win streak: 2/3",)


def test_g8_competitive_kills():
    verdict = run_gaming(G, {"mode": "competitive", "competitiveMetric": "kills", "topN": 2})
    assert (verdict.pass_, verdict.score) == (True, 32)


def test_g9_competitive_kda_is_aggregate():
    verdict = run_gaming(G, {"mode": "competitive", "competitiveMetric": "kda"})
    assert (verdict.pass_, verdict.score) == (True, 4.25)


@pytest.mark.parametrize(("metric", "expected"), [("assists", 19), ("deaths", 12), ("wins", 3)])
def test_competitive_assists_deaths_wins(metric, expected):
    assert run_gaming(G, {"mode": "competitive", "competitiveMetric": metric}).score == expected


def test_g10_hero_filter_without_hero_names():
    verdict = run_gaming(G, {"minWins": 1, "hero": "antimage", "period": PERIOD})
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.reasons == ("Qualifying wins: 0/1 (hero: antimage) (within period)",)


def test_hero_filter_with_hero_names_from_the_rewritten_provider():
    named = [{**record, "hero_name": "Anti-Mage" if record["hero_id"] == 1 else "Axe"} for record in G]
    verdict = run_gaming(named, {"minWins": 2, "hero": "anti-mage"})
    assert (verdict.pass_, verdict.score) == (True, 2)


def test_g11_faceit_competitive_kills_without_stats():
    verdict = run_gaming(FACEIT, {"mode": "competitive", "competitiveMetric": "kills"}, provider="faceit")
    assert (verdict.pass_, verdict.score) == (True, 0)


def test_faceit_kills_with_stats_added_by_the_provider():
    with_stats = [{**FACEIT[0], "kills": 21}, {**FACEIT[1], "kills": 9}]
    verdict = run_gaming(with_stats, {"mode": "competitive", "competitiveMetric": "kills"}, provider="faceit")
    assert verdict.score == 30


def test_g12_faceit_ranked_only():
    verdict = run_gaming(FACEIT, {"minWins": 1, "rankedOnly": True}, provider="faceit")
    assert (verdict.pass_, verdict.score) == (False, 0)


def test_g13_riot_ranked_hero_period():
    verdict = run_gaming(RIOT, {"minWins": 1, "rankedOnly": True, "hero": "ahr", "period": PERIOD}, provider="riot")
    assert (verdict.pass_, verdict.score, verdict.metadata["eligibleRecords"]) == (True, 1, 1)


def test_lol_intake_adapter_fields():
    records = [
        {"match_id": "m1", "queue": "ranked", "start_ts": T0, "team_result": "win", "k": 9, "d": 1, "a": 4,
         "hero_champion": "Lux"},
        {"match_id": "m2", "queue": "other", "start_ts": T0 + 60, "team_result": "win", "k": 3, "d": 3, "a": 3,
         "hero_champion": "Lux"},
    ]
    ranked = run_gaming(records, {"minWins": 1, "rankedOnly": True, "hero": "lux", "period": PERIOD}, provider="riot")
    assert (ranked.pass_, ranked.score) == (True, 1)
    kills = run_gaming(records, {"mode": "competitive", "competitiveMetric": "kills", "rankedOnly": True},
                       provider="riot")
    assert kills.score == 9


def test_g16_structural_pass():
    verdict = run_gaming(G)
    assert (verdict.pass_, verdict.score) == (True, 3)
    assert (verdict.metadata["losses"], verdict.metadata["other"]) == (1, 0)


def test_g17_structural_only_a_loss():
    verdict = run_gaming([G[1]])
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.reasons == ("No winning records found in evidence (records: 1, losses: 1)",)


def test_g18_fitness_rule_is_ignored_for_game_evidence_without_a_fitness_provider():
    # A fitness rule selects the fitness evaluator; game evidence alone is then no fitness evidence.
    proof = {"params": {"rule": {"challengeType": "run", "period": PERIOD}}}
    verdict = run_gaming(G, None, proof)
    assert (verdict.pass_, verdict.reasons) == (False, ("No records in fitness evidence",))
    assert verdict.metadata["ignoredProviders"] == ["opendota"]


def test_g19_legacy_top_level_min_wins():
    verdict = run_gaming(G, {"start_ts": T0, "end_ts": T0 + 86400, "minWins": 5})
    assert (verdict.pass_, verdict.score) == (False, 3)
    assert verdict.reasons == ("Qualifying wins: 3/5",)


def test_g20_headshots_from_either_field():
    records = [{**G[0], "hs_count": 4}, {**G[1], "headshots": 6}]
    verdict = run_gaming(records, simple("headshots", 10, "total"))
    assert (verdict.pass_, verdict.score) == (True, 10)


def test_g21_kda_best_match():
    verdict = run_gaming(G, simple("kda", 16, "best_match"))
    assert (verdict.pass_, verdict.score) == (True, 16)


def test_g22_record_without_time_does_not_count_in_a_period():
    # Differs from the original (true / 1): a match without a time cannot be placed in the period.
    undated = {k: v for k, v in G[0].items() if k != "start_time"}
    verdict = run_gaming([undated], {"minWins": 1, "period": PERIOD})
    assert (verdict.pass_, verdict.score) == (False, 0)


def test_g23_competitive_damage():
    records = [{**G[0], "hero_damage": 1000}, {**G[2], "damage_dealt": 500}]
    verdict = run_gaming(records, {"mode": "competitive", "competitiveMetric": "damage"})
    assert verdict.score == 1500


def test_g24_unknown_competitive_metric_is_refused():
    # Differs from the original (true / 2: scored as wins): refused at registration.
    records = [G[0], G[1], G[2]]
    verdict = run_gaming(records, {"mode": "competitive", "competitiveMetric": "mvps"})
    assert (verdict.pass_, verdict.score) == (False, None)
    assert verdict.reasons[0].startswith("Challenge rule cannot be used: params.competitiveMetric: unknown "
                                         "competitive metric 'mvps'")


def test_acceptance_14_to_17():
    # the original's inline records, each with a match id: identical records without one are one record
    kills = [{"match_id": n, "kills": k, "deaths": d, "win": True} for n, (k, d) in enumerate(((10, 2), (7, 3), (15, 1)))]
    assert run_gaming(kills, {"mode": "competitive", "competitiveMetric": "kills"}).score == 32
    kda = {"mode": "competitive", "competitiveMetric": "kda"}
    assert run_gaming([{"kills": 10, "deaths": 5, "assists": 5}], kda).score == 3.0
    assert run_gaming([{"kills": 10, "deaths": 0, "assists": 5}], kda).score == 15
    wins = [{"match_id": n, "win": w} for n, w in enumerate((True, False, True, True))]
    assert run_gaming(wins, {"mode": "competitive", "competitiveMetric": "wins"}).score == 3


def test_ranked_only_string_false_means_false():
    verdict = run_gaming(G, {"minWins": 3, "rankedOnly": "false"})
    assert verdict.pass_ is True


def test_challenge_window_applies_when_the_rule_has_no_period():
    timeline = {"startsAt": T0 + 3000, "endsAt": T0 + 8000}
    verdict = run_gaming(G, {"minWins": 1}, timeline=timeline)
    assert verdict.score == 1  # only match 3 (a win) and match 2 (a loss) are inside


def test_no_game_records():
    assert run_gaming([], {"minWins": 1}).reasons == ("No game records in evidence",)
