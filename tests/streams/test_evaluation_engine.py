"""evaluate(): provider routing, evidence across providers, and the record shapes of every provider."""

from __future__ import annotations

from streams.evaluation import NO_EVALUATOR, evaluate, parse_challenge_rule

STEPS_TOTAL = parse_challenge_rule({"rules": {"type": "fitness", "metric": "steps", "threshold": 20000,
                                              "period": "total"}})


def test_unknown_provider_fails_with_the_reason():
    verdict = evaluate(STEPS_TOTAL, {"dota2": [{"win": True}]})
    assert (verdict.pass_, verdict.score, verdict.evaluator) == (False, None, NO_EVALUATOR)
    assert verdict.reasons == ('No evaluator registered for provider "dota2"',)


def test_no_evidence_at_all():
    verdict = evaluate(STEPS_TOTAL, {})
    assert (verdict.pass_, verdict.evaluator) == (False, NO_EVALUATOR)


def test_totals_sum_across_providers():
    apple = [{"type": "steps", "start_ts": 1740787200, "end_ts": 1740787200 + 86399, "steps": 12000}]
    fitbit = [{"dateTime": "2025-03-02", "value": 9000}]
    alone = evaluate(STEPS_TOTAL, {"apple": apple})
    both = evaluate(STEPS_TOTAL, {"Apple": apple, "fitbit": fitbit})
    assert alone.pass_ is False
    assert (both.pass_, both.score, both.evaluator) == (True, 21000, "apple+fitbit:stream")
    assert both.metadata["providers"] == ["apple", "fitbit"]


def test_unknown_provider_next_to_a_known_one_is_ignored_and_named():
    apple = [{"type": "steps", "date": "2025-03-01", "steps": 25000}]
    verdict = evaluate(STEPS_TOTAL, {"apple": apple, "mystery": [{"steps": 1}]})
    assert verdict.pass_ is True
    assert verdict.metadata["ignoredProviders"] == ["mystery"]


def test_the_rule_chooses_the_evaluator():
    gaming_rule = parse_challenge_rule({"minWins": 1})
    verdict = evaluate(gaming_rule, {"strava": [{"type": "run", "start": "2025-03-01T00:00:00Z"}],
                                     "faceit": [{"result_for_player": "win", "start_time": 1740787200}]})
    assert (verdict.pass_, verdict.score, verdict.evaluator) == (True, 1, "faceit:stream")


def test_manual_passthrough():
    assert evaluate(None, {"manual": [{"a": 1}, {"b": 2}]}).score == 2
    assert evaluate(None, {"manual": []}).reasons == ("No records in manual evidence",)


def test_every_fitness_provider_shape():
    """One record per provider as the original connectors/adapters and the rewritten ones produce."""
    rule = parse_challenge_rule(
        {"rules": {"type": "fitness", "metric": "distance_km", "threshold": 0, "period": "total"}},
        timeline={"startsAt": "2025-03-01T00:00:00Z", "endsAt": "2025-03-31T23:59:59Z"})
    evidence = {
        "strava": [{"activity_id": "1", "type": "run", "start": "2025-03-02T06:00:00Z", "distance_m": 5012,
                    "distance_km": 5.012, "duration_s": 1500, "duration_min": 25, "elev_gain_m": 12,
                    "avg_hr_bpm": None, "max_hr_bpm": None, "avg_speed_kmh": 12.0}],
        "fitbit": [{"dateTime": "2025-03-02", "value": 8000},
                   {"startTime": "2025-03-03T07:00:00.000-08:00", "duration": 1800000, "distance": 2,
                    "distanceUnit": "Mile", "steps": 3000, "activityName": "Walk", "type": "walk",
                    "duration_s": 1800, "duration_min": 30, "distance_km": 3.21868}],
        "apple": [{"provider": "apple_health", "activity_id": "record:x", "type": "distance",
                   "start_ts": 1740990000, "end_ts": 1740993600, "duration_s": 3600, "distance_m": 1000,
                   "steps": None}],
        "garmin": [{"provider": "garmin", "activity_id": "tcx:1", "type": "cycle", "start_ts": 1741000000,
                    "end_ts": 1741003600, "duration_s": 3600, "distance_m": 20000, "elev_gain_m": 100.5,
                    "steps": None, "avg_hr_bpm": None}],
        "googlefit": [{"activity_id": "pt:1", "type": "distance", "start_ts": 1741010000, "end_ts": 1741013600,
                       "duration_s": 3600, "distance_m": 2500, "steps": None}],
    }
    verdict = evaluate(rule, evidence)
    assert verdict.pass_ is True
    assert verdict.score == round(5.012 + 3.21868 + 1 + 20 + 2.5, 2)
    assert verdict.metadata["activityCount"] == 6  # fitbit's daily steps row counts with 0 km


def test_apple_date_format_and_offsets():
    rule = parse_challenge_rule({"rules": {"type": "fitness", "metric": "steps", "threshold": 1, "period": "daily"}})
    records = [{"type": "steps", "start": "2025-09-20 23:45:00 +0200", "steps": 10}]
    verdict = evaluate(rule, {"apple": records})
    assert list(verdict.metadata["dayDetails"]) == ["2025-09-20"]


def test_evaluator_errors_become_failing_verdicts(monkeypatch):
    import streams.evaluation.engine as engine

    def explode(_rule, _records):
        raise ValueError("boom")

    monkeypatch.setitem(engine._FAMILIES, "fitness", (engine.FITNESS_PROVIDERS, explode))
    verdict = evaluate(None, {"strava": [{}]})
    assert (verdict.pass_, verdict.reasons) == (False, ("Evaluator internal error: boom",))


def test_combined_evidence_hash():
    from streams.evaluation import combine_evidence_hashes

    assert combine_evidence_hashes({"strava": "0xaa"}) == "0xaa"
    combined = combine_evidence_hashes({"Strava": "0xaa", "apple": "0xbb"})
    assert combined == combine_evidence_hashes({"apple": "0xbb", "strava": "0xaa"})
    assert combined != combine_evidence_hashes({"apple": "0xbb", "strava": "0xac"})
    assert combined.startswith("0x") and len(combined) == 66


def test_provider_aliases_and_steam():
    assert evaluate(None, {"steam": [{"win": True}]}).evaluator == "steam:stream"
    apple_health = evaluate(None, {"apple_health": [{"type": "steps", "date": "2025-03-01", "steps": 3}]})
    assert (apple_health.pass_, apple_health.evaluator) == (True, "apple_health:stream")
