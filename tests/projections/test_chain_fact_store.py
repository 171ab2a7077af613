"""chain_events writes: COPY's text rows escape what they must, and a batch believed new that is not
(a fact published again) falls back to the upsert with the same end state. The work given to run
while the rows go in runs once on every path, and its result comes back."""

from __future__ import annotations

import psycopg

from cli.settings import Settings
from projections.chain.facts import ChainFact
from projections.chain.store import fact_copy_line, store_facts
from projections.framework import connect


def fact(n: int, *, removed: bool = False, **args: object) -> ChainFact:
    return ChainFact(f"31337:0x{n:064x}:0x{n:064x}:0", 31337, n, "MetadataRegistry", "0x" + "3d" * 20, "MetadataSet",
                     n, f"0x{n:064x}", 1_700_000_000 + n, f"0x{n:064x}", 0, 0,
                     {"challengeId": str(n), **args}, removed)


class Meanwhile:
    """Work for store_facts to run while PostgreSQL takes the rows in: counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        return f"result {self.runs}"


def store(conn: psycopg.Connection, lines: str, *, all_new: bool) -> None:
    meanwhile = Meanwhile()
    assert store_facts(conn, lines, all_new=all_new, meanwhile=meanwhile) == "result 1"
    assert meanwhile.runs == 1


def stored(conn: psycopg.Connection) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in conn.execute("SELECT event_id, challenge_id, args, removed FROM chain_events")}


def test_copy_lines_escape_tabs_newlines_and_backslashes(settings: Settings) -> None:
    odd = fact(1, newUri="http://x/\t\n\r\\ é \u2028")
    with connect(settings.pg_dsn) as conn, conn.transaction():
        store(conn, fact_copy_line(odd), all_new=True)
        assert stored(conn)[odd.event_id] == (1, dict(odd.args), False)


def test_a_batch_believed_new_falls_back_to_the_upsert(settings: Settings) -> None:
    first, second = fact(1), fact(2)
    with connect(settings.pg_dsn) as conn:
        with conn.transaction():
            store(conn, fact_copy_line(first), all_new=True)
        with conn.transaction():  # retracted, then published again in a later batch without a retraction
            store(conn, fact_copy_line(first._replace(removed=True)), all_new=False)
        assert stored(conn)[first.event_id][2] is True
        with conn.transaction():
            store(conn, fact_copy_line(first) + fact_copy_line(second), all_new=True)  # the COPY fails
        assert stored(conn) == {first.event_id: (1, dict(first.args), False), second.event_id: (2, dict(second.args), False)}
