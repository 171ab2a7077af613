"""`evaluate`: every current evidence batch of one (challenge, subject) → one verdict."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domain.rules import ChallengeRule
from streams.evaluation import matches
from streams.evaluation.fitness import evaluate_fitness
from streams.evaluation.gaming import evaluate_gaming
from streams.evaluation.verdict import Outcome, Verdict

FITNESS_PROVIDERS = frozenset({"apple", "apple_health", "strava", "garmin", "fitbit", "googlefit"})
GAMING_PROVIDERS = frozenset({"opendota", "riot", "steam", "faceit"})
MANUAL_PROVIDERS = frozenset({"manual"})
NO_EVALUATOR = "unknown:no-evaluator"
_EVALUATOR_SUFFIX = "stream"


RecordsByProvider = Mapping[str, Sequence[object]]


def _passthrough(_rule: ChallengeRule | None, records_by_provider: RecordsByProvider) -> Outcome:
    """Manual evidence: passes with the number of distinct records."""
    distinct = {matches.canonical(r) if isinstance(r, Mapping) else repr(r)
                for records in records_by_provider.values() for r in records}
    if not distinct:
        return Outcome(False, None, ("No records in manual evidence",))
    return Outcome(True, len(distinct), (), {"count": len(distinct)})


_FAMILIES: dict[str, tuple[frozenset[str], Callable[[ChallengeRule | None, RecordsByProvider], Outcome]]] = {
    "fitness": (FITNESS_PROVIDERS, evaluate_fitness),
    "gaming": (GAMING_PROVIDERS, evaluate_gaming),
    "manual": (MANUAL_PROVIDERS, _passthrough),
}


_FAMILY_OF_PROVIDER = {provider: name for name, (members, _) in _FAMILIES.items() for provider in members}


def family_of(provider: str) -> str | None:
    return _FAMILY_OF_PROVIDER.get(provider)


def _choose_family(rule: ChallengeRule | None, present: set[str]) -> str:
    """The rule decides which evidence counts; without a rule, the evidence the subject has."""
    if rule is not None and (rule.simple_fitness or rule.fitness):
        return "fitness"
    if rule is not None and (rule.simple_gaming or rule.gaming):
        return "gaming"
    for name in _FAMILIES:  # a loop, not next() over a generator: one per verdict (a hot path)
        if name in present:
            return name
    raise ValueError(f"no evaluator family among {sorted(present)}")


def _provider_name(provider: object) -> str:
    return provider.strip().lower() if isinstance(provider, str) else repr(provider)


def _by_provider(evidence_by_provider: object) -> dict[str, list[object]]:
    """Provider names normalised (any case; a name that is no string never matches a provider) and
    records as lists (a missing or non-list batch holds no records)."""
    by_provider: dict[str, list[object]] = {}
    if not isinstance(evidence_by_provider, Mapping):
        return by_provider
    for provider, records in evidence_by_provider.items():
        batch = by_provider.setdefault(_provider_name(provider), [])
        if isinstance(records, list | tuple):
            batch.extend(records)
    return by_provider if len(by_provider) < 2 else dict(sorted(by_provider.items()))


def evaluate(rule: ChallengeRule | None, evidence_by_provider: Mapping[str, Sequence[object]]) -> Verdict:
    """Evaluate all current evidence of one subject for one challenge, across every provider.

    `evidence_by_provider` maps a provider name (any case) to that provider's current records.
    `rule` is the challenge's parsed rule, or None when the challenge has no registered metadata.
    Never raises, whatever the input: an unknown provider, a rule with problems, a score that is not
    finite or an evaluator error becomes a failing verdict with the reason.
    """
    try:
        return _evaluate(rule, evidence_by_provider)
    except Exception as error:  # a shape nobody foresaw must not stop the stage
        return Verdict(False, None, (f"Evaluator internal error: {type(error).__name__}: {error}",), None,
                       NO_EVALUATOR)


def _evaluate(rule: ChallengeRule | None, evidence_by_provider: object) -> Verdict:
    by_provider = _by_provider(evidence_by_provider)
    families = {name: family_of(name) for name in by_provider}
    present = {family for family in families.values() if family is not None}
    if not present:
        names = ", ".join(f'"{name}"' for name in by_provider) or '""'
        return Verdict(False, None, (f"No evaluator registered for provider {names}",), None, NO_EVALUATOR)

    family = _choose_family(rule, present)
    used = [name for name, fam in families.items() if fam == family]
    ignored = [name for name, fam in families.items() if fam != family]
    evaluator = f"{'+'.join(used) or family}:{_EVALUATOR_SUFFIX}"
    metadata_extra: dict[str, Any] = {"providers": used}
    if ignored:
        metadata_extra["ignoredProviders"] = ignored
    if rule is not None and rule.problems:
        reason = f"Challenge rule cannot be used: {'; '.join(rule.problems)}"
        return Verdict(False, None, (reason,), metadata_extra, evaluator)
    try:
        outcome = _FAMILIES[family][1](rule, {name: by_provider[name] for name in used})
    except Exception as error:  # a rule or record shape nobody foresaw must not stop the stage
        outcome = Outcome(False, None, (f"Evaluator internal error: {error}",))
    metadata = {**(outcome.metadata or {}), **metadata_extra}
    if outcome.score is not None and not math.isfinite(outcome.score):
        # never ranked, never passed: a score of infinity would win every ranking
        reason = f"Score {outcome.score} is not a finite number"
        return Verdict(False, None, (*outcome.reasons, reason), metadata, evaluator)
    return Verdict(outcome.pass_, outcome.score, outcome.reasons, metadata, evaluator)


def combine_evidence_hashes(hash_by_provider: Mapping[str, str]) -> str:
    """The verdict's `evidence_hash`: the provider's own hash when there is one provider, else a
    0x-prefixed SHA-256 over the sorted `provider=hash` lines (a bytes32, as the proof encoding wants)."""
    normalised = {provider.strip().lower(): value for provider, value in hash_by_provider.items()}
    if len(normalised) == 1:
        return next(iter(normalised.values()))
    lines = "\n".join(f"{provider}={normalised[provider]}" for provider in sorted(normalised))
    return "0x" + hashlib.sha256(lines.encode()).hexdigest()
