"""`evaluate`: every current evidence batch of one (challenge, subject) → one verdict."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from domain.rules import ChallengeRule
from streams.evaluation.fitness import evaluate_fitness
from streams.evaluation.gaming import evaluate_gaming
from streams.evaluation.verdict import Outcome, Verdict

FITNESS_PROVIDERS = frozenset({"apple", "apple_health", "strava", "garmin", "fitbit", "googlefit"})
GAMING_PROVIDERS = frozenset({"opendota", "riot", "steam", "faceit"})
MANUAL_PROVIDERS = frozenset({"manual"})
NO_EVALUATOR = "unknown:no-evaluator"
_EVALUATOR_SUFFIX = "stream"


def _passthrough(_rule: ChallengeRule | None, records: Sequence[object]) -> Outcome:
    if not records:
        return Outcome(False, None, ("No records in manual evidence",))
    return Outcome(True, len(records), (), {"count": len(records)})


_FAMILIES: dict[str, tuple[frozenset[str], Callable[[ChallengeRule | None, Sequence[object]], Outcome]]] = {
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
    return next(name for name in _FAMILIES if name in present)


def evaluate(rule: ChallengeRule | None, evidence_by_provider: Mapping[str, Sequence[object]]) -> Verdict:
    """Evaluate all current evidence of one subject for one challenge, across every provider.

    `evidence_by_provider` maps a provider name (any case) to that provider's current records.
    `rule` is the challenge's parsed rule, or None when the challenge has no registered metadata.
    Never raises: an unknown provider or an evaluator error becomes a failing verdict with the reason.
    """
    by_provider: dict[str, list[object]] = {}
    for provider, records in evidence_by_provider.items():
        by_provider.setdefault(provider.strip().lower(), []).extend(records)
    families = {name: family_of(name) for name in by_provider}
    present = {family for family in families.values() if family is not None}
    if not present:
        names = ", ".join(f'"{name}"' for name in sorted(by_provider)) or '""'
        return Verdict(False, None, (f"No evaluator registered for provider {names}",), None, NO_EVALUATOR)

    family = _choose_family(rule, present)
    used = sorted(name for name, fam in families.items() if fam == family)
    ignored = sorted(name for name, fam in families.items() if fam != family)
    records = [record for name in used for record in by_provider[name]]
    evaluator = f"{'+'.join(used) or family}:{_EVALUATOR_SUFFIX}"
    try:
        outcome = _FAMILIES[family][1](rule, records)
    except Exception as error:  # a rule or record shape nobody foresaw must not stop the stage
        outcome = Outcome(False, None, (f"Evaluator internal error: {error}",))
    metadata = {**(outcome.metadata or {}), "providers": used}
    if ignored:
        metadata["ignoredProviders"] = ignored
    return Verdict(outcome.pass_, outcome.score, outcome.reasons, metadata, evaluator)


def combine_evidence_hashes(hash_by_provider: Mapping[str, str]) -> str:
    """The verdict's `evidence_hash`: the provider's own hash when there is one provider, else a
    0x-prefixed SHA-256 over the sorted `provider=hash` lines (a bytes32, as the proof encoding wants)."""
    normalised = {provider.strip().lower(): value for provider, value in hash_by_provider.items()}
    if len(normalised) == 1:
        return next(iter(normalised.values()))
    lines = "\n".join(f"{provider}={normalised[provider]}" for provider in sorted(normalised))
    return "0x" + hashlib.sha256(lines.encode()).hexdigest()
