"""Fitness evaluator: the reference vectors of spec/evaluation.md §3.8 and a case for every metric."""

from __future__ import annotations

import json

import pytest

from streams.evaluation import evaluate, parse_challenge_rule

D = [
    {"type": "steps", "start": "2025-03-01T08:00:00Z", "steps": 6000},
    {"type": "steps", "start": "2025-03-01T18:00:00Z", "steps": 5000},
    {"type": "steps", "start": "2025-03-02T08:00:00Z", "steps": 9999},
    {"type": "steps", "date": "2025-03-03", "steps": 12000},
    {"type": "walk", "start_ts": 1741046400, "end_ts": 1741046400 + 3600, "distance_m": 4200,
     "duration_s": 3600, "steps": 10500},
]
MARCH_1_TO_8 = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-08T00:00:00Z"}


def simple(metric, threshold, period, **extra):
    return {"rules": {"type": "fitness", "metric": metric, "threshold": threshold, "period": period, **extra}}


def run_fitness(records, params=None, proof=None, timeline=None, provider="apple"):
    return evaluate(parse_challenge_rule(params, proof, timeline), {provider: records})


# --- simplified rules (S-vectors) -------------------------------------------------------------

def test_s1_daily_steps_min_days_3():
    verdict = run_fitness(D, simple("steps", 10000, "daily", minDays=3))
    assert (verdict.pass_, verdict.score, verdict.reasons) == (True, 3, ())
    assert verdict.metadata["dayDetails"] == {
        "2025-03-01": {"value": 11000, "passed": True},
        "2025-03-02": {"value": 9999, "passed": False},
        "2025-03-03": {"value": 12000, "passed": True},
        "2025-03-04": {"value": 10500, "passed": True},
    }
    assert verdict.metadata["totalDays"] == 4


def test_s2_min_days_defaults_to_one():
    verdict = run_fitness(D, simple("steps", 10000, "daily"))
    assert (verdict.pass_, verdict.score, verdict.metadata["minDays"]) == (True, 3, 1)


def test_daily_fails_with_the_original_reason():
    verdict = run_fitness(D, simple("steps", 10000, "daily", minDays=4))
    assert verdict.pass_ is False
    assert verdict.reasons == ("Only 3 of 4 required days met the 10000 steps threshold",)


def test_s3_total_distance_counts_every_type():
    verdict = run_fitness(D, simple("distance_km", 4, "total"))
    assert (verdict.pass_, verdict.score, verdict.metadata["activityCount"]) == (True, 4.2, 5)


def test_s4_average_steps_over_distinct_days():
    verdict = run_fitness(D, simple("steps", 10000, "average"))
    assert (verdict.pass_, verdict.score) == (True, 10874.75)
    assert (verdict.metadata["totalDays"], verdict.metadata["totalValue"]) == (4, 43499)


def test_s5_walking_km_only_walks():
    verdict = run_fitness(D, simple("walking_km", 4, "total"))
    assert (verdict.pass_, verdict.score, verdict.metadata["activityCount"]) == (True, 4.2, 1)


def test_s6_hiit_minutes_count_hiit_records():
    # Differs from the original (false / 0): hiit normalises to crossfit, which hiit_min now reads.
    records = [{"type": "hiit", "start": "2025-03-01T08:00:00Z", "duration_min": 45}]
    verdict = run_fitness(records, simple("hiit_min", 30, "total"))
    assert (verdict.pass_, verdict.score) == (True, 45)


def test_simple_metric_with_no_matching_activity():
    verdict = run_fitness(D, simple("swimming_km", 1, "total"))
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.reasons == ('No activities found matching metric "swimming_km"',)
    assert verdict.metadata["totalActivities"] == 5


def test_s7_unknown_period():
    # Differs from the original (false / 0 / `Unknown period type "weekly"`): such a rule is refused at
    # registration; one that reaches the evaluator anyway fails with the rule's problem.
    verdict = run_fitness(D, simple("steps", 1, "weekly"))
    assert (verdict.pass_, verdict.score) == (False, None)
    assert verdict.reasons == ("Challenge rule cannot be used: params.rules.period must be one of average, daily, "
                               "total, got 'weekly'",)


def test_s8_calories_from_kilojoules():
    records = [
        {"type": "calories", "start": "2025-03-01T08:00:00Z", "kilojoules": 2092},
        {"type": "run", "start": "2025-03-01T09:00:00Z", "calories": 300},
    ]
    verdict = run_fitness(records, simple("calories", 800, "total"))
    assert (verdict.pass_, verdict.score) == (True, 800)


def test_s9_strength_sessions_default_to_one():
    records = [
        {"type": "WeightTraining", "start": "2025-03-01T08:00:00Z"},
        {"type": "strength", "start": "2025-03-02T08:00:00Z", "sessions": 2},
    ]
    verdict = run_fitness(records, simple("strength_sessions", 3, "total"))
    assert (verdict.pass_, verdict.score) == (True, 3)


def test_s10_day_is_the_date_the_start_was_written_in():
    # The original's S10 has both records at the same instant; one provider's two step records of one
    # instant are now one record, so the second is a minute later.
    records = [
        {"type": "steps", "start": "2025-03-01T23:30:00-05:00", "steps": 10000},
        {"type": "steps", "start_ts": 1740889860, "steps": 10000},  # 2025-03-02T04:31Z
    ]
    verdict = run_fitness(records, simple("steps", 10000, "daily", minDays=2))
    assert (verdict.pass_, verdict.score) == (True, 2)
    assert set(verdict.metadata["dayDetails"]) == {"2025-03-01", "2025-03-02"}


def test_s11_proof_params_as_a_json_string():
    proof = {"params": json.dumps(simple("steps", 5000, "total"))}
    verdict = run_fitness(D, None, proof)
    assert (verdict.pass_, verdict.score) == (True, 43499)


def test_s13_nothing_normalisable():
    verdict = run_fitness([{"type": "dance"}, {"foo": 1}], simple("steps", 1, "total"))
    assert (verdict.pass_, verdict.score) == (False, None)
    assert verdict.reasons == (
        "Evidence contains 2 record(s) but none could be normalized to a recognised activity shape",
    )
    assert verdict.metadata["sampleTypes"] == ["dance", "unknown"]


def test_s15_record_without_start_is_not_normalisable():
    verdict = run_fitness([{"type": "run", "distance_km": 5}], simple("distance_km", 1, "total"))
    assert (verdict.pass_, verdict.score) == (False, None)
    assert "none could be normalized" in verdict.reasons[0]


def test_no_records():
    verdict = run_fitness([], simple("steps", 1, "total"))
    assert (verdict.pass_, verdict.score, verdict.reasons) == (False, None, ("No records in fitness evidence",))


def test_simple_rules_apply_the_challenge_window():
    # Differs from the original (which counted every record, spec §8.7).
    timeline = {"startsAt": "2025-03-02T00:00:00Z", "endsAt": "2025-03-03T23:59:59Z"}
    verdict = run_fitness(D, simple("steps", 1, "total"), timeline=timeline)
    assert verdict.score == 9999 + 12000


def test_s11_r11_simple_rules_win_over_a_full_rule():
    proof = {"params": {"rule": {"challengeType": "run", "period": MARCH_1_TO_8,
                                 "conditions": [{"metric": "distance_km", "op": ">=", "value": 1000}]}}}
    verdict = run_fitness(D, simple("steps", 1, "total"), proof)
    assert (verdict.pass_, verdict.score) == (True, 43499)


SIMPLE_METRIC_CASES = [
    ("steps", [{"type": "steps", "steps": 7}, {"type": "run", "steps": 3}], 10),
    ("distance_km", [{"type": "run", "distance_km": 2.5}, {"type": "cycle", "distance_m": 1500}], 4),
    ("walking_km", [{"type": "walking", "distance_km": 2}, {"type": "run", "distance_km": 9}], 2),
    ("active_minutes", [{"type": "run", "duration_s": 1800}, {"type": "yoga", "duration_min": 20}], 50),
    ("cycling_km", [{"type": "Ride", "distance_km": 20}, {"type": "run", "distance_km": 5}], 20),
    ("swimming_km", [{"type": "swim", "distance_m": 1500}, {"type": "run", "distance_km": 5}], 1.5),
    ("hiking_km", [{"type": "hiking", "distance_km": 8}, {"type": "walk", "distance_km": 5}], 8),
    ("rowing_km", [{"type": "indoor_rowing", "distance_km": 5}, {"type": "run", "distance_km": 5}], 5),
    ("strength_sessions", [{"type": "weights"}, {"type": "strength", "sessions": 3}], 4),
    ("yoga_min", [{"type": "pilates", "duration_min": 30}, {"type": "run", "duration_min": 30}], 30),
    ("hiit_min", [{"type": "HIIT", "duration_min": 25}, {"type": "crossfit", "duration_min": 5}], 30),
    ("exercise_time", [{"type": "exercise_time", "exercise_minutes": 40}, {"type": "run", "duration_min": 20}], 60),
    ("calories", [{"type": "run", "calories": 250}, {"type": "active_energy", "calories_kcal": 150}], 400),
]


@pytest.mark.parametrize(("metric", "records", "expected"), SIMPLE_METRIC_CASES, ids=[c[0] for c in SIMPLE_METRIC_CASES])
def test_every_simple_metric(metric, records, expected):
    dated = [{**record, "start": f"2025-03-0{i + 1}T10:00:00Z"} for i, record in enumerate(records)]
    passing = run_fitness(dated, simple(metric, expected, "total"))
    assert (passing.pass_, passing.score) == (True, expected)
    failing = run_fitness(dated, simple(metric, expected + 1, "total"))
    assert failing.pass_ is False


# --- full rule, threshold mode (R-vectors) ------------------------------------------------------

def full_rule(challenge_type, **fields):
    return {"params": {"rule": {"challengeType": challenge_type, "period": MARCH_1_TO_8, **fields}}}


def test_r2_daily_streak_not_met():
    proof = full_rule("steps", dailyTarget={
        "consecutiveDays": 3, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]})
    verdict = run_fitness(D, None, proof)
    assert (verdict.pass_, verdict.score) == (False, 32999)
    assert verdict.reasons == ("Daily streak not met", "Consecutive days achieved: 2/3")


def test_daily_streak_met_counts_day_totals():
    proof = full_rule("steps", dailyTarget={
        "consecutiveDays": 2, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]})
    verdict = run_fitness(D, None, proof)
    assert verdict.pass_ is True
    assert verdict.metadata["bestStreak"] == 2


def test_daily_streak_in_the_rule_time_zone():
    # 23:30 local in Kiritimati (UTC+14) on two consecutive local days; the original's tzMidnight
    # put both walks on the wrong day and found a streak of 1.
    period = {"start": "2025-03-01T00:00:00+14:00", "end": "2025-03-02T23:59:59+14:00",
              "timezone": "Pacific/Kiritimati"}
    records = [
        {"type": "steps", "start": "2025-03-01T09:30:00Z", "steps": 10000},  # 03-01 23:30 local
        {"type": "steps", "start": "2025-03-02T09:30:00Z", "steps": 10000},  # 03-02 23:30 local
    ]
    proof = {"params": {"rule": {"challengeType": "steps", "period": period, "dailyTarget": {
        "consecutiveDays": 2, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]}}}}
    assert run_fitness(records, None, proof).pass_ is True


def test_daily_streak_without_zone_uses_utc_days():
    records = [
        {"type": "steps", "start": "2025-03-01T23:30:00Z", "steps": 10000},
        {"type": "steps", "start": "2025-03-02T00:30:00Z", "steps": 10000},
    ]
    proof = full_rule("steps", dailyTarget={
        "consecutiveDays": 2, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]})
    assert run_fitness(records, None, proof).pass_ is True
    records[1]["start"] = "2025-03-01T23:45:00Z"
    assert run_fitness(records, None, proof).pass_ is False


RUN_3KM_A = {"type": "run", "start": "2025-03-02T07:00:00Z", "distance_km": 3, "duration_min": 18}
RUN_3KM_B = {"type": "run", "start": "2025-03-04T07:00:00Z", "distance_km": 3, "duration_min": 20}


def test_r3_distance_target_is_a_total():
    # Differs from the original (false: conditions were checked per activity, spec §8.3).
    proof = full_rule("run", conditions=[{"metric": "distance_km", "op": ">=", "value": 5}])
    verdict = run_fitness([RUN_3KM_A, RUN_3KM_B], None, proof)
    assert (verdict.pass_, verdict.score, verdict.reasons) == (True, 0, ())
    assert verdict.metadata["total_distance_km"] == 6


def test_total_target_not_met_gives_the_total():
    proof = full_rule("run", conditions=[{"metric": "distance_km", "op": ">=", "value": 10}])
    verdict = run_fitness([RUN_3KM_A, RUN_3KM_B], None, proof)
    assert verdict.pass_ is False
    assert verdict.reasons == ("Total distance_km: 6, required >= 10",)


def test_non_additive_conditions_filter_activities_before_the_total():
    conditions = [{"metric": "distance_km", "op": ">=", "value": 5},
                  {"metric": "avg_pace_min_per_km", "op": "<=", "value": 6.2}]
    verdict = run_fitness([RUN_3KM_A, RUN_3KM_B], None, full_rule("run", conditions=conditions))
    assert verdict.pass_ is False  # only the 6:00 pace run is eligible: 3 km
    assert verdict.metadata["eligibleCount"] == 1
    conditions[1]["value"] = 7
    assert run_fitness([RUN_3KM_A, RUN_3KM_B], None, full_rule("run", conditions=conditions)).pass_ is True


def test_no_activity_meets_per_activity_conditions():
    conditions = [{"metric": "avg_hr_bpm", "op": ">=", "value": 150}]
    verdict = run_fitness([RUN_3KM_A], None, full_rule("run", conditions=conditions))
    assert verdict.reasons == ("No activity met the required conditions",)


def test_r4_missing_gps_is_not_cheating():
    # Differs from the original (false: "Low GPS continuity (0.00 < 0.6)" for every run without GPS).
    run = {"type": "run", "start": "2025-03-02T07:00:00Z", "distance_km": 6}
    proof = full_rule("run", conditions=[{"metric": "distance_km", "op": ">=", "value": 5}],
                      antiCheat={"minGpsContinuity": 0.6, "maxTeleportJumps": 3})
    assert run_fitness([run], None, proof).pass_ is True


def test_gps_anti_cheat_on_a_real_track():
    smooth = [[42.0, 23.0 + i * 0.001] for i in range(5)]
    jumpy = [[42.0, 23.0], [42.0, 23.1], [42.0, 23.2], [42.0, 23.3]]
    proof = full_rule("run", antiCheat={"minGpsContinuity": 0.6, "maxTeleportJumps": 2})
    good = {"type": "run", "start": "2025-03-02T07:00:00Z", "distance_km": 6, "gps_path": smooth}
    bad = {**good, "gps_path": jumpy}
    assert run_fitness([good], None, proof).pass_ is True
    verdict = run_fitness([bad], None, proof)
    assert verdict.reasons == ("Low GPS continuity (0.00 < 0.6)", "Too many GPS jumps (3 > 2)")


def test_heart_rate_anti_cheat():
    proof = full_rule("run", antiCheat={"minHrConsistency": 0.5})
    run = {"type": "run", "start": "2025-03-02T07:00:00Z", "duration_min": 30, "avg_hr_bpm": 60}
    assert run_fitness([run], None, proof).reasons == ("Low HR/activity consistency (0.30 < 0.5)",)
    assert run_fitness([{**run, "avg_hr_bpm": 150}], None, proof).pass_ is True
    assert run_fitness([{**run, "avg_hr_bpm": None}], None, proof).pass_ is True


def test_r9_rule_without_targets_still_needs_an_activity():
    # Differs from the original (true / 0: nothing to check passed any evidence, spec §8.17).
    verdict = run_fitness(D, None, full_rule("run"))
    assert verdict.pass_ is False
    assert verdict.reasons == ("No activities in period for challengeType",)
    assert run_fitness([RUN_3KM_A], None, full_rule("run")).pass_ is True


def test_period_bounds_exclude_activities_outside():
    late = {**RUN_3KM_A, "start": "2025-03-09T07:00:00Z"}
    verdict = run_fitness([late], None, full_rule("run"))
    assert verdict.pass_ is False


def weekly_rule(period, min_occurrences, weeks):
    return {"params": {"rule": {"challengeType": "run", "period": period,
                                "weeklyTarget": {"minOccurrences": min_occurrences, "perWeeks": weeks}}}}


def run_on(day):
    return {"type": "run", "start": f"{day}T07:00:00Z", "distance_km": 5}


def test_r10_weekly_target_not_met():
    proof = weekly_rule({"start": "2025-02-24T00:00:00Z", "end": "2025-03-09T23:59:59Z"}, 1, 2)
    verdict = run_fitness([run_on("2025-03-04"), run_on("2025-03-06")], None, proof)
    assert verdict.reasons == ("Weekly target not met (1/2 weeks achieved)",)


def test_weekly_target_counts_weeks_not_months():
    # Differs from the original, which bucketed by calendar month: one month, so 1/2.
    proof = weekly_rule({"start": "2025-03-01T00:00:00Z", "end": "2025-03-14T23:59:59Z"}, 1, 2)
    verdict = run_fitness([run_on("2025-03-02"), run_on("2025-03-10")], None, proof)
    assert verdict.pass_ is True


def test_weekly_conditions_describe_each_occurrence():
    period = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-07T23:59:59Z"}
    proof = weekly_rule(period, 2, 1)
    proof["params"]["rule"]["conditions"] = [{"metric": "distance_km", "op": ">=", "value": 10}]
    short = [run_on("2025-03-02"), run_on("2025-03-03"), run_on("2025-03-04")]
    assert run_fitness(short, None, proof).pass_ is False  # 3 × 5 km are not two 10 km runs
    long = [{**r, "distance_km": 10} for r in short[:2]]
    assert run_fitness(long, None, proof).pass_ is True


def test_r1_walking_challenge_type_is_understood():
    # Differs from the original: "walking" was not a type, so any evidence got a structural pass.
    proof = {"params": {"rule": {"challengeType": "walking", "period": MARCH_1_TO_8, "dailyTarget": {
        "consecutiveDays": 3, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]}}}}
    verdict = run_fitness(D, None, proof)
    assert verdict.pass_ is False
    assert verdict.reasons == ("Daily streak not met", "Consecutive days achieved: 2/3")


FULL_METRIC_CASES = [
    ("distance_km", {"type": "run", "distance_km": 6}, 5),
    ("walking_km", {"type": "walk", "distance_km": 6}, 5),
    ("hiking_km", {"type": "hike", "distance_km": 6}, 5),
    ("rowing_km", {"type": "rowing", "distance_km": 6}, 5),
    ("cycling_km", {"type": "cycle", "distance_km": 6}, 5),
    ("swimming_km", {"type": "swim", "distance_km": 6}, 5),
    ("swim_distance_km", {"type": "swim", "distance_km": 6}, 5),
    ("duration_min", {"type": "run", "duration_min": 31}, 30),
    ("yoga_min", {"type": "yoga", "duration_min": 31}, 30),
    ("hiit_min", {"type": "hiit", "duration_min": 31}, 30),
    ("crossfit_min", {"type": "crossfit", "duration_min": 31}, 30),
    ("active_minutes", {"type": "run", "duration_min": 31}, 30),
    ("exercise_time", {"type": "exercise_time", "exercise_minutes": 31}, 30),
    ("elev_gain_m", {"type": "hike", "elev_gain_m": 600}, 500),
    ("steps_count", {"type": "steps", "steps": 12000}, 10000),
    ("calories", {"type": "calories", "calories": 900}, 800),
    ("strength_sessions", {"type": "strength", "sessions": 4}, 3),
    ("avg_hr_bpm", {"type": "run", "avg_hr_bpm": 150}, 140),
    ("max_hr_bpm", {"type": "run", "max_hr_bpm": 190}, 180),
    ("avg_speed_kmh", {"type": "cycle", "distance_km": 30, "duration_min": 60}, 25),
    ("gps_continuity_score", {"type": "run", "gps_path": [[42.0, 23.0 + i * 0.001] for i in range(4)]}, 0.9),
    ("hr_activity_consistency", {"type": "run", "avg_hr_bpm": 150, "duration_min": 30}, 0.9),
]
CHALLENGE_TYPE_OF = {"walk": "walk", "hike": "hike", "rowing": "rowing", "cycle": "cycle", "swim": "swim",
                     "yoga": "yoga", "hiit": "crossfit", "crossfit": "crossfit", "exercise_time": "exercise_time",
                     "steps": "steps", "calories": "calories", "strength": "strength", "run": "run"}


@pytest.mark.parametrize(("metric", "record", "value"), FULL_METRIC_CASES, ids=[c[0] for c in FULL_METRIC_CASES])
def test_every_condition_metric(metric, record, value):
    activity = {**record, "start": "2025-03-02T07:00:00Z"}
    proof = full_rule(CHALLENGE_TYPE_OF[record["type"]], conditions=[{"metric": metric, "op": ">=", "value": value}])
    assert run_fitness([activity], None, proof).pass_ is True
    proof["params"]["rule"]["conditions"][0]["value"] = value * 2
    assert run_fitness([activity], None, proof).pass_ is False


def test_pace_condition():
    run = {"type": "run", "start": "2025-03-02T07:00:00Z", "distance_km": 5, "duration_min": 30}
    proof = full_rule("run", conditions=[{"metric": "avg_pace_min_per_km", "op": "<=", "value": 6}])
    assert run_fitness([run], None, proof).pass_ is True
    assert run_fitness([{**run, "duration_min": 35}], None, proof).pass_ is False


@pytest.mark.parametrize(("op", "value", "expected"), [
    (">=", 6, True), (">", 6, False), ("<=", 6, True), ("<", 6, False), ("==", 6, True), ("~", 6, False),
])
def test_operators(op, value, expected):
    run = {"type": "run", "start": "2025-03-02T07:00:00Z", "distance_km": 6, "avg_hr_bpm": 6}
    proof = full_rule("run", conditions=[{"metric": "avg_hr_bpm", "op": op, "value": value}])
    assert run_fitness([run], None, proof).pass_ is expected


# --- full rule, competitive mode ----------------------------------------------------------------

def test_r5_competitive_distance_in_period_and_type():
    records = [RUN_3KM_A, RUN_3KM_B, {"type": "walk", "start": "2025-03-03T07:00:00Z", "distance_km": 2},
               {"type": "run", "start": "2025-04-01T07:00:00Z", "distance_km": 9}]
    proof = full_rule("run", mode="competitive", competitiveMetric="distance_km",
                      conditions=[{"metric": "distance_km", "op": ">=", "value": 100}])
    verdict = run_fitness(records, None, proof)
    assert (verdict.pass_, verdict.score) == (True, 6)
    assert verdict.metadata["mode"] == "competitive"


def test_r6_competitive_default_metric_is_steps():
    verdict = run_fitness([RUN_3KM_A], None, full_rule("run", mode="competitive"))
    assert (verdict.pass_, verdict.score, verdict.metadata["metric"]) == (True, 0, "steps_count")


def test_r7_competitive_mode_found_on_another_path():
    params = {"mode": "competitive", "competitiveMetric": "duration_min"}
    verdict = run_fitness([RUN_3KM_A, RUN_3KM_B], params, full_rule("run"))
    assert (verdict.pass_, verdict.score) == (True, 38)


def test_competitive_sums_are_unrounded():
    runs = [{"type": "run", "start": f"2025-03-0{i}T07:00:00Z", "distance_km": km}
            for i, km in ((2, 10.5), (3, 10.2), (4, 10.0))]
    verdict = run_fitness(runs, None, full_rule("run", mode="competitive", competitiveMetric="distance_km"))
    assert verdict.score == pytest.approx(30.7)


@pytest.mark.parametrize(("values", "expected"), [((5000, 3000, 2500), 10500), ((5000, None, 2000), 7000)])
def test_acceptance_10_12_competitive_steps(values, expected):
    records = [{"type": "steps", "start": f"2025-03-02T0{hour}:00:00Z", "steps": v} if v is not None else {}
               for hour, v in enumerate(values)]
    verdict = run_fitness(records, None, full_rule("steps", mode="competitive", competitiveMetric="steps_count"))
    assert verdict.score == expected


def test_acceptance_11_13_competitive_distance():
    runs = [{"type": "run", "start": f"2025-03-02T0{hour}:00:00Z", "distance_km": km}
            for hour, km in ((7, 5.2), (8, 3.8))]
    proof = full_rule("run", mode="competitive", competitiveMetric="distance_km")
    assert run_fitness(runs, None, proof).score == pytest.approx(9.0)
    assert run_fitness([{"type": "walk", "start": "2025-03-02T07:00:00Z"}], None, proof).score == 0


def test_r13_ios_walking_competitive_ranks_steps():
    # Differs from the original (structural pass, score = record count): iOS stores `walking` and
    # `metric`; a walking challenge counts its daily step records.
    proof = {"params": {"rule": {"challengeType": "walking", "period": MARCH_1_TO_8, "mode": "competitive",
                                 "metric": "steps_count"}, "form": {"topN": 3}}}
    verdict = run_fitness(D, None, proof)
    assert (verdict.pass_, verdict.score) == (True, 43499)
    assert parse_challenge_rule(None, proof).top_n == 3


def test_competitive_simplified_rules_score_the_total():
    params = {**simple("steps", 100000, "total"), "mode": "competitive"}
    verdict = run_fitness(D, params)
    assert (verdict.pass_, verdict.score) == (True, 43499)


# --- structural pass ---------------------------------------------------------------------------

def test_structural_pass_without_rule():
    verdict = run_fitness(D + [{"type": "dance", "start": "2025-03-01T00:00:00Z"}])
    assert (verdict.pass_, verdict.score) == (True, 5)
    assert verdict.metadata["types"] == ["steps", "walk"]
    assert verdict.metadata["totalRecords"] == 6


def test_structural_pass_needs_an_activity_in_the_window():
    timeline = {"startsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-02-01T00:00:00Z"}
    verdict = run_fitness(D, timeline=timeline)
    assert verdict.pass_ is False


# --- the legacy data/examples shapes (EX1, EX2) -----------------------------------------------------

def test_ex1_seven_day_streak_in_sofia():
    days = [f"2025-01-0{d}" for d in range(1, 8)]
    steps = [11000, 17000, 14000, 12000, 16000, 13000, 15000]
    records = [{"type": "steps", "start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z", "steps_count": count}
               for day, count in zip(days, steps, strict=True)]
    rule = {"challengeType": "steps",
            "period": {"start": "2025-01-01T00:00:00+02:00", "end": "2025-01-07T23:59:59+02:00",
                       "timezone": "Europe/Sofia"},
            "dailyTarget": {"consecutiveDays": 7, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]},
            "model": {"modelId": "model://challengepay.steps.v1", "modelVersion": 1}}
    verdict = run_fitness(records, rule)
    assert (verdict.pass_, verdict.score) == (True, 98000)
    records[3]["steps_count"] = 9000
    assert run_fitness(records, rule).reasons == ("Daily streak not met", "Consecutive days achieved: 3/7")


EX2_RUNS = [
    {"type": "run", "start": f"2025-01-{d:02d}T06:00:00Z", "end": f"2025-01-{d:02d}T07:00:00Z", "distance_km": km,
     "duration_min": 60, "avg_hr_bpm": 150, "max_hr_bpm": 175, "elev_gain_m": 40,
     "gps_path": [[42.69, 23.32 + i * 0.002] for i in range(10)]}
    for d, km in ((6, 10.5), (8, 10.2), (10, 10.0))
]
EX2_RULE = {
    "challengeType": "run",
    "period": {"start": "2025-01-06T00:00:00+02:00", "end": "2025-02-02T23:59:59+02:00", "timezone": "Europe/Sofia"},
    "weeklyTarget": {"minOccurrences": 3, "perWeeks": 4},
    "conditions": [{"metric": "distance_km", "op": ">=", "value": 10},
                   {"metric": "avg_pace_min_per_km", "op": "<=", "value": 8.0},
                   {"metric": "gps_continuity_score", "op": ">=", "value": 0.9},
                   {"metric": "hr_activity_consistency", "op": ">=", "value": 0.8}],
    "antiCheat": {"minGpsContinuity": 0.85, "minHrConsistency": 0.7, "maxTeleportJumps": 2},
}


def test_ex2_three_runs_in_one_week_of_four():
    verdict = run_fitness(EX2_RUNS, EX2_RULE)
    assert (verdict.pass_, verdict.score) == (False, 0)
    assert verdict.reasons == ("Weekly target not met (1/4 weeks achieved)",)
    assert verdict.metadata["eligibleCount"] == 3


def test_ex2_competitive_distance_variant():
    verdict = run_fitness(EX2_RUNS, {**EX2_RULE, "mode": "competitive", "competitiveMetric": "distance_km"})
    assert verdict.score == pytest.approx(30.7)


def test_daily_streak_across_a_dst_change():
    # 2025-03-09 is 23 hours long in New York; 23:30 local that day is 03:30Z on 03-10.
    period = {"start": "2025-03-08T00:00:00-05:00", "end": "2025-03-09T23:59:59-04:00",
              "timezone": "America/New_York"}
    records = [{"type": "steps", "start": "2025-03-09T04:30:00Z", "steps": 10000},  # 03-08 23:30 EST
               {"type": "steps", "start": "2025-03-10T03:30:00Z", "steps": 10000}]  # 03-09 23:30 EDT
    rule = {"challengeType": "steps", "period": period, "dailyTarget": {
        "consecutiveDays": 2, "conditions": [{"metric": "steps_count", "op": ">=", "value": 10000}]}}
    assert run_fitness(records, rule).pass_ is True


WEEKLY_NEEDS_PERIOD = "Weekly target needs a period with start and end, at most ten years apart"


@pytest.mark.parametrize(("period", "weekly_reason"), [
    ({"start": "2025-03-01T00:00:00Z"}, WEEKLY_NEEDS_PERIOD),
    ({"start": "2025-03-01T00:00:00Z", "end": "8999-12-31T00:00:00Z"}, WEEKLY_NEEDS_PERIOD),
])
def test_streak_and_weekly_targets_need_a_sane_period(period, weekly_reason):
    streak = {"challengeType": "steps", "period": period, "dailyTarget": {
        "consecutiveDays": 1, "conditions": [{"metric": "steps_count", "op": ">=", "value": 1}]}}
    assert run_fitness(D, streak).reasons == (
        "Daily streak needs a period with start and end, at most ten years apart",)
    weekly = {"challengeType": "steps", "period": period, "weeklyTarget": {"minOccurrences": 1, "perWeeks": 1}}
    verdict = run_fitness([{"type": "steps", "start": "2025-03-02T00:00:00Z", "steps": 1}], weekly)
    assert verdict.reasons[-1] == weekly_reason


COMPETITIVE_METRIC_CASES = [
    ("steps_count", {"steps": 4000}, 8000),
    ("distance_km", {"distance_km": 2.5}, 5),
    ("duration_min", {"duration_min": 30}, 60),
    ("elev_gain_m", {"elev_gain_m": 120}, 240),
    ("calories", {"kilojoules": 418.4}, 200),
    ("active_minutes", {"duration_s": 600}, 20),
    ("exercise_time", {"exercise_minutes": 12, "duration_min": 99}, 24),
    ("walking_km", {"distance_km": 1}, 0),  # typed distance of a run challenge: no walks
    ("steps", {"steps": 4000}, 8000),  # the templates' name for steps_count
]


@pytest.mark.parametrize(("metric", "fields", "expected"), COMPETITIVE_METRIC_CASES,
                         ids=[c[0] for c in COMPETITIVE_METRIC_CASES])
def test_every_competitive_fitness_metric(metric, fields, expected):
    runs = [{"type": "run", "start": f"2025-03-0{d}T07:00:00Z", **fields} for d in (2, 3)]
    verdict = run_fitness(runs, None, full_rule("run", mode="competitive", competitiveMetric=metric))
    assert verdict.pass_ is True
    assert verdict.score == pytest.approx(expected)


def test_a_period_ending_before_it_starts_or_out_of_range_is_refused():
    backwards = {"challengeType": "steps", "period": {"start": "2025-03-08T00:00:00Z", "end": "2025-03-01T00:00:00Z"}}
    assert run_fitness(D, backwards).reasons == (
        "Challenge rule cannot be used: params.period.end is before params.period.start",)
    far = {"challengeType": "steps", "period": {"start": "2025-03-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}}
    assert run_fitness(D, far).reasons == ("Challenge rule cannot be used: params.period.end '9999-12-31T00:00:00Z' "
                                           "is not a time (ISO-8601 or Unix seconds, 1970..9000)",)


@pytest.mark.parametrize("metric", ["avg_hr_bpm", "floors"])
def test_a_competitive_metric_that_cannot_be_summed_is_refused(metric):
    # Differs from the original, which ranked such challenges by steps.
    verdict = run_fitness(D, None, full_rule("run", mode="competitive", competitiveMetric=metric))
    assert (verdict.pass_, verdict.score) == (False, None)
    assert f"unknown competitive metric '{metric}'" in verdict.reasons[0]


def test_a_daily_total_covers_its_whole_day_in_the_window():
    timeline = {"startsAt": "2025-03-03T10:00:00Z", "endsAt": "2025-03-03T20:00:00Z"}
    verdict = run_fitness(D, simple("steps", 1, "total"), timeline=timeline)
    assert verdict.score == 12000  # the date-only record of 03-03; the timed ones are outside
