"""`lc health [--json]`: the runbook's checks against any deployment, from its settings alone.

It needs no local pid file or process: every check asks the services themselves (Kafka, PostgreSQL,
the chain node, the schema registry) with short timeouts. Each check is `ok`, `warn` (degraded: the
pipeline runs but something needs an operator), `down` (a service does not answer or cannot be
used) or `skip` (nothing to check here, e.g. a writer key not set in this environment). Exit code:
0 healthy, 1 degraded, 2 down. Secrets never appear: URLs and DSNs are masked, keys become addresses.
The checks themselves are in `cli/health_checks.py`; docs/operations.md says what each one means.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

OK, WARN, DOWN, SKIP = "ok", "warn", "down", "skip"
HEALTHY, DEGRADED, UNAVAILABLE = "healthy", "degraded", "down"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def overall(checks: list[Check]) -> tuple[str, int]:
    """The deployment's state and the exit code: down (2) if any check is down, degraded (1) if any warns."""
    statuses = {c.status for c in checks}
    if DOWN in statuses:
        return UNAVAILABLE, 2
    if WARN in statuses:
        return DEGRADED, 1
    return HEALTHY, 0


def guarded(name: str, probe: Callable[[], Iterator[Check]]) -> Iterator[Check]:
    """A probe's checks; a probe that raises becomes one `down` check naming what failed (never a traceback)."""
    try:
        yield from probe()
    except Exception as exc:  # any library's failure: reported as the check's outcome
        text = (str(exc).strip().splitlines() or [""])[0][:300]
        yield Check(name, DOWN, f"{type(exc).__name__}: {text}")


def render_text(checks: list[Check]) -> str:
    state, _code = overall(checks)
    lines = [f"lc health: {state}"]
    width = max((len(c.name) for c in checks), default=10)
    for check in checks:
        lines.append(f"  {check.status:5} {check.name:{width}}  {check.detail}")
    return "\n".join(lines)


def render_json(checks: list[Check]) -> str:
    state, code = overall(checks)
    return json.dumps({"status": state, "exit_code": code, "checks": [asdict(c) for c in checks]}, indent=2)
