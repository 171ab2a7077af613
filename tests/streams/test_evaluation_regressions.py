"""Issue 13's cases, each with the verdict the rule justifies (the original's verdict in the comment)."""

from __future__ import annotations

import math

import pytest

from indexers.providers import records as provider_records
from streams.evaluation import evaluate, parse_challenge_rule
from streams.evaluation.verdict import Outcome

SEPTEMBER = {"start": "2025-09-01T00:00:00Z", "end": "2025-09-30T23:59:59Z"}


def ms(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def steps_total(threshold: float, **extra: object) -> dict:
    return {"rules": {"type": "fitness", "metric": "steps", "threshold": threshold, "period": "total", **extra}}


# --- 1. a metric-only object no longer hides the rule --------------------------------------------------

RIOT = [
    {"match_id": "EUW1_1", "game_creation": ms("2025-09-05T18:00:00+00:00"), "queue_type": "RANKED_SOLO_5x5",
     "champion": "Ahri", "win": True, "kills": 3, "deaths": 4, "assists": 5},
    {"match_id": "EUW1_2", "game_creation": ms("2025-10-15T18:00:00+00:00"), "queue_type": "RANKED_SOLO_5x5",
     "champion": "Ahri", "win": False, "kills": 99, "deaths": 1, "assists": 0},
    {"match_id": "EUW1_3", "game_creation": ms("2025-09-06T18:00:00+00:00"), "queue_type": "ARAM",
     "champion": "Ahri", "win": False, "kills": 50, "deaths": 9, "assists": 9},
]


def test_1_metric_only_object_merges_with_the_rule_in_params():
    params = {"rule": {"mode": "competitive", "rankedOnly": True, "period": SEPTEMBER}}
    proof = {"params": {"rule": {"competitiveMetric": "kills"}}}
    rule = parse_challenge_rule(params, proof)
    assert rule.problems == ()
    verdict = evaluate(rule, {"riot": RIOT})
    # the original: pass / 152 / rankedOnly false (the Oct ranked loss and the ARAM game counted)
    assert (verdict.pass_, verdict.score) == (True, 3)
    assert (verdict.metadata["metric"], verdict.metadata["rankedOnly"], verdict.metadata["eligibleRecords"]) == (
        "kills", True, 1)


def test_1_the_same_rule_in_one_place_or_split_over_four_gives_one_reading():
    whole = parse_challenge_rule({"rule": {"mode": "competitive", "rankedOnly": True, "period": SEPTEMBER,
                                           "competitiveMetric": "kills", "topN": 2}})
    split = parse_challenge_rule({"topN": 2, "rule": json_text({"period": SEPTEMBER})},
                                 {"params": json_text({"rankedOnly": True, "rule": {"competitiveMetric": "kills"},
                                                       "mode": "competitive"})})
    assert (split.gaming, split.competitive, split.competitive_metric, split.top_n) == (
        whole.gaming, whole.competitive, whole.competitive_metric, whole.top_n)


def test_1_a_key_set_in_two_places_comes_from_the_first_in_precedence():
    rule = parse_challenge_rule({"rule": {"minWins": 5}, "minWins": 9}, {"params": {"minWins": 2}})
    assert rule.gaming.min_wins == 2  # proof.params before params.rule before params
    simple = parse_challenge_rule({"rules": {"type": "gaming", "metric": "wins", "threshold": 3}},
                                  {"params": {"rules": {"threshold": 1, "period": "total"}}})
    assert (simple.simple_gaming.threshold, simple.simple_gaming.period) == (3, "total")  # params.rules first


def json_text(value: object) -> str:
    import json

    return json.dumps(value)


# --- 2. a provider's activities are inside its daily totals --------------------------------------------

FITBIT_STEPS = {"activities-steps": [{"dateTime": "2025-09-05", "value": "12034"},
                                     {"dateTime": "2025-09-06", "value": "8456"}]}
FITBIT_RUN = {"activities": [{"logId": 77, "activityName": "Run", "startTime": "2025-09-05T07:10:00.000+02:00",
                              "duration": 1_800_000, "distance": 5.1, "distanceUnit": "Kilometer", "steps": 5120,
                              "calories": 380, "logType": "auto_detected"}]}


def fitbit_collected() -> list[dict]:
    """What the collector publishes for Fitbit: daily steps, then the activity logs."""
    return provider_records.fitbit_steps_records(FITBIT_STEPS) + provider_records.fitbit_activity_records(FITBIT_RUN)


def test_2_fitbit_run_steps_are_not_added_to_the_day_total():
    verdict = evaluate(parse_challenge_rule(steps_total(20490)), {"fitbit": fitbit_collected()})
    assert (verdict.pass_, verdict.score) == (True, 20490)  # the original: 25,610
    assert evaluate(parse_challenge_rule(steps_total(20491)), {"fitbit": fitbit_collected()}).pass_ is False


def test_2_a_daily_target_is_judged_on_the_day_total():
    rule = parse_challenge_rule({"rules": {"type": "fitness", "metric": "steps", "threshold": 15000,
                                           "period": "daily"}})
    verdict = evaluate(rule, {"fitbit": fitbit_collected()})
    # the original: pass, Sep 5 counted 12,034 + 5,120
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.metadata["dayDetails"]["2025-09-05"] == {"value": 12034, "passed": False}


def test_2_a_streak_day_summary_counts_the_day_once():
    params = {"rule": {"challengeType": "steps", "period": {"start": "2025-09-05T00:00:00Z",
                                                             "end": "2025-09-06T23:59:59Z"},
                       "dailyTarget": {"consecutiveDays": 1,
                                       "conditions": [{"metric": "steps_count", "op": ">=", "value": 15000}]}}}
    verdict = evaluate(parse_challenge_rule(params), {"fitbit": fitbit_collected()})
    assert verdict.reasons == ("Daily streak not met", "Consecutive days achieved: 0/1")


def test_2_but_a_run_challenge_still_counts_the_run():
    params = {"rule": {"challengeType": "run", "period": SEPTEMBER,
                       "conditions": [{"metric": "distance_km", "op": ">=", "value": 5}]}}
    verdict = evaluate(parse_challenge_rule(params), {"fitbit": fitbit_collected()})
    assert (verdict.pass_, verdict.metadata["total_distance_km"]) == (True, 5.1)


APPLE_DAY = {"provider": "apple_health", "activity_id": "day:steps:2025-09-05", "type": "steps",
             "start": "2025-09-05T00:00:00+02:00", "end": "2025-09-05T23:59:59+02:00", "date": "2025-09-05",
             "period": "day", "steps": 11000}
APPLE_DISTANCE_DAY = {**APPLE_DAY, "activity_id": "day:distance:2025-09-05", "type": "distance", "steps": None,
                      "distance_m": 8200}
APPLE_RUN = {"provider": "apple_health", "activity_id": "workout:run", "type": "run",
             "start": "2025-09-05T07:00:00+02:00", "end": "2025-09-05T07:35:00+02:00", "period": "activity",
             "duration_s": 2100, "steps": 5200, "distance_m": 5300}


def test_2_apple_workouts_are_inside_the_apple_day_totals():
    evidence = {"apple_health": [APPLE_DAY, APPLE_DISTANCE_DAY, APPLE_RUN]}
    assert evaluate(parse_challenge_rule(steps_total(0)), evidence).score == 11000  # the original: 16,200
    distance = {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 0, "period": "total"}}
    assert evaluate(parse_challenge_rule(distance), evidence).score == 8.2  # the original: 13.5


def test_2_activities_count_when_they_add_up_to_more_than_the_day_total():
    early_total = {**APPLE_DAY, "steps": 4000}  # fetched before the day ended
    assert evaluate(parse_challenge_rule(steps_total(0)), {"apple_health": [early_total, APPLE_RUN]}).score == 5200


# --- 3. one activity from two providers --------------------------------------------------------------

STRAVA_RUN = {"activity_id": "16181809559", "type": "run", "start": "2025-09-07T06:00:00Z", "distance_m": 5012,
              "distance_km": 5.012, "duration_s": 1620, "duration_min": 27, "elev_gain_m": 31}
GARMIN_RUN = {"provider": "garmin", "activity_id": "connect:1", "type": "run", "start": "2025-09-07T08:00:04+02:00",
              "end": "2025-09-07T08:27:31+02:00", "duration_s": 1647, "distance_m": 4987.4, "steps": 4410,
              "period": "activity"}
TEN_KM = {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 10, "period": "total"}}


def test_3_the_same_run_from_strava_and_garmin_counts_once():
    verdict = evaluate(parse_challenge_rule(TEN_KM), {"strava": [STRAVA_RUN], "garmin": [GARMIN_RUN]})
    # the original (one provider per verdict) and a plain sum across providers: 10 km, pass
    assert (verdict.pass_, verdict.score) == (False, 4.99)  # Garmin's record, first in priority
    assert verdict.metadata["duplicates"] == 1
    assert verdict.reasons == ("Total distance_km: 4.99, required: 10",)


def test_3_the_kept_record_takes_the_fields_it_lacks_from_the_other():
    steps = evaluate(parse_challenge_rule(steps_total(0)), {"strava": [STRAVA_RUN], "garmin": [GARMIN_RUN]})
    elevation = {"rule": {"challengeType": "run", "period": SEPTEMBER,
                          "conditions": [{"metric": "elev_gain_m", "op": ">=", "value": 30}]}}
    climbed = evaluate(parse_challenge_rule(elevation), {"strava": [STRAVA_RUN], "garmin": [GARMIN_RUN]})
    assert (steps.score, climbed.pass_, climbed.metadata["total_elev_gain_m"]) == (4410, True, 31)


def test_3_two_different_runs_from_two_providers_both_count():
    later = {**GARMIN_RUN, "activity_id": "connect:2", "start": "2025-09-07T18:00:00+02:00",
             "end": "2025-09-07T18:27:27+02:00", "distance_m": 5100}
    verdict = evaluate(parse_challenge_rule(TEN_KM), {"strava": [STRAVA_RUN], "garmin": [later]})
    assert (verdict.pass_, verdict.score) == (True, 10.11)


def test_3_exact_duplicates_inside_one_provider_count_once():
    twice = evaluate(parse_challenge_rule(TEN_KM), {"strava": [STRAVA_RUN, STRAVA_RUN]})
    assert (twice.pass_, twice.score, twice.metadata["duplicates"]) == (False, 5.01, 1)
    same_start = {k: v for k, v in STRAVA_RUN.items() if k != "activity_id"}
    again = evaluate(parse_challenge_rule(TEN_KM), {"strava": [same_start, {**same_start, "distance_km": 5.2}]})
    assert (again.pass_, again.score) == (False, 5.2)  # the one with the larger values is kept


# --- 5. a rule that cannot be read fails instead of passing structurally ------------------------------

UNREADABLE = [
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": "10000", "period": "total"}},
     "params.rules.threshold must be a number from 0 to 1e+12, got '10000'"),
    ({"rule": {"challengeType": "jogging", "period": SEPTEMBER,
               "conditions": [{"metric": "distance_km", "op": ">=", "value": 100}]}},
     "params.rule.challengeType: unknown challenge type 'jogging'"),
    ({"rule": {"challengeType": "run", "period": "2025-09"}}, "params.rule.period must be an object {start, end}"),
    ({"templateId": "running_window", "rule": "{challengeType: run"}, "params.rule is not valid JSON"),
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": math.nan, "period": "total"}},
     "params.rules.threshold must be a number from 0 to 1e+12, got nan"),
]


@pytest.mark.parametrize(("params", "problem"), UNREADABLE, ids=["string threshold", "jogging", "string period",
                                                                  "malformed nested JSON", "NaN threshold"])
def test_5_unreadable_rules_fail_with_the_reason(params, problem):
    runs = [{"type": "run", "start": "2025-09-07T06:00:00Z", "distance_km": 1, "steps": 5}]
    verdict = evaluate(parse_challenge_rule(params), {"strava": runs})
    # the original: a structural pass (score = number of records) with no reason
    assert (verdict.pass_, verdict.score) == (False, None)
    assert verdict.reasons[0].startswith("Challenge rule cannot be used: ")
    assert problem in verdict.reasons[0]


# --- 6. parsing never raises --------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "timeline", "problem"), [
    ({"rules": {"type": "fitness", "metric": "steps", "threshold": 10**400, "period": "total"}}, None,
     "params.rules.threshold must be a number"),
    ({"rule": {"challengeType": "run", "period": {"start": 1e300, "end": "2025-09-30T00:00:00Z"}}}, None,
     "params.rule.period.start 1e+300 is not a time"),
    ({"rules": steps_total(1)["rules"]}, {"startsAt": "2025-09-01T00:00:00Z", "endsAt": 1e300},
     "timeline.endsAt 1e+300 is not a time"),
])
def test_6_huge_numbers_are_problems_not_overflow_errors(params, timeline, problem):
    rule = parse_challenge_rule(params, None, timeline)
    assert any(problem in p for p in rule.problems)


# --- 7. one unusable record does not fail the others --------------------------------------------------

VALID_RUN = {"activity_id": "ok", "type": "run", "start": "2025-09-07T06:00:00Z", "distance_km": 5.2}


@pytest.mark.parametrize(("bad", "problem"), [
    ({"activity_id": "ms", "type": "run", "start_ts": 1757224800000, "distance_km": 50},
     "strava record 'ms': start_ts 1757224800000 is not Unix seconds from 1970 to 9000; not counted"),
    ({"activity_id": "y9999", "type": "run", "start": "9999-12-31T23:59:00Z", "duration_s": 600, "distance_km": 50},
     "strava record 'y9999': start '9999-12-31T23:59:00Z' is not a time from 1970 to 9000; not counted"),
    ({"activity_id": "inf", "type": "run", "start": "2025-09-08T06:00:00Z", "distance_km": math.inf},
     "strava record 'inf': distance_km inf is not a number from 0 to 1e+09; not counted"),
])
def test_7_an_unusable_record_is_left_out_with_a_problem_note(bad, problem):
    five_km = {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 5, "period": "total"}}
    verdict = evaluate(parse_challenge_rule(five_km), {"strava": [bad, VALID_RUN]})
    # the original: fail, "Evaluator internal error: date value out of range" (or the record counted)
    assert (verdict.pass_, verdict.score) == (True, 5.2)
    assert verdict.metadata["problems"] == [problem]


def test_7_the_whole_evidence_of_every_provider_is_not_lost():
    bad = {"type": "run", "start_ts": 1757224800000, "distance_km": 1}
    verdict = evaluate(parse_challenge_rule(TEN_KM), {"strava": [VALID_RUN, bad], "garmin": [
        {**GARMIN_RUN, "start": "2025-09-08T08:00:00+02:00", "end": "2025-09-08T08:30:00+02:00"}]})
    assert (verdict.pass_, verdict.score) == (True, 10.19)


# --- 8. smaller ---------------------------------------------------------------------------------------

def test_8_huge_values_never_make_an_infinite_score():
    steps = [{"type": "steps", "start": f"2025-09-0{d}T08:00:00Z", "steps": 1e308} for d in (1, 2)]
    competitive = {"rule": {"challengeType": "steps", "period": SEPTEMBER, "mode": "competitive"}}
    verdict = evaluate(parse_challenge_rule(competitive), {"apple": steps + [
        {"type": "steps", "start": "2025-09-03T08:00:00Z", "steps": 7000}]})
    # the original: score Infinity, which wins every ranking
    assert (verdict.pass_, verdict.score) == (True, 7000)
    assert verdict.metadata["problems"] == [
        "apple record without id: steps 1e+308 is not a number from 0 to 1e+09; not counted"]
    kills = [{"match_id": str(n), "kills": 1e308, "win": True} for n in range(2)]
    gaming = evaluate(parse_challenge_rule({"mode": "competitive", "competitiveMetric": "kills"}), {"riot": kills})
    assert (gaming.pass_, gaming.score) == (False, None)  # no match left to count


def test_8_a_non_finite_score_fails_and_is_not_ranked(monkeypatch):
    import streams.evaluation.engine as engine

    def infinite(_rule, _records):
        return Outcome(True, math.inf, (), {})

    monkeypatch.setitem(engine._FAMILIES, "fitness", (engine.FITNESS_PROVIDERS, infinite))
    verdict = evaluate(None, {"strava": [VALID_RUN]})
    assert (verdict.pass_, verdict.score, verdict.reasons) == (False, None, ("Score inf is not a finite number",))


@pytest.mark.parametrize("evidence", [
    {"strava": None}, None, {7: [VALID_RUN]}, {"strava": "records"}, {None: None}, [("strava", [VALID_RUN])],
])
def test_8_evaluate_never_raises_on_odd_input(evidence):
    verdict = evaluate(parse_challenge_rule(TEN_KM), evidence)
    assert verdict.pass_ is False


@pytest.mark.parametrize(("rules", "problem"), [
    ({"minDays": math.inf}, "params.rules.minDays must be a whole number from 1 to 100000, got inf"),
    ({"minDays": "Infinity"}, "params.rules.minDays must be a whole number from 1 to 100000, got 'Infinity'"),
    ({"minDays": -2}, "params.rules.minDays must be a whole number"),
    ({"threshold": -1}, "params.rules.threshold must be a number from 0"),
])
def test_8_infinite_or_negative_counts_and_thresholds_are_problems(rules, problem):
    params = {"rules": {"type": "fitness", "metric": "steps", "threshold": 1, "period": "daily", **rules}}
    assert problem in parse_challenge_rule(params).problems[0]
    assert "params.minWins must be a whole number" in parse_challenge_rule({"minWins": -1}).problems[0]
