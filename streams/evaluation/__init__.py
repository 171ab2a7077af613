"""Pure evaluation of evidence against a challenge rule (spec/evaluation.md §1, §3, §4)."""

from domain.rules import ChallengeRule, parse_challenge_rule
from domain.timeline import Timeline, parse_timeline
from streams.evaluation.engine import (
    FITNESS_PROVIDERS,
    GAMING_PROVIDERS,
    NO_EVALUATOR,
    combine_evidence_hashes,
    evaluate,
    family_of,
)
from streams.evaluation.verdict import Verdict

__all__ = [
    "FITNESS_PROVIDERS",
    "GAMING_PROVIDERS",
    "NO_EVALUATOR",
    "ChallengeRule",
    "Timeline",
    "Verdict",
    "combine_evidence_hashes",
    "evaluate",
    "family_of",
    "parse_challenge_rule",
    "parse_timeline",
]
