"""Swapping rebuilt tables in, table by table, around what the web app built on top of them.

The web app shares the schema, and may have built on the pipeline's tables: a view over
`challenges`, a foreign key from its `reminders` into `challenges`, an index of its own on an owned
table, grants for its database role. PostgreSQL binds those to the table itself (its oid), not to its
name, so after a swap they would still point at the old table and dropping it would fail or cascade.
`inspect` finds them (pg_depend, and a comparison of each live owned table with its rebuilt twin):

- recreated around the swap: plain views (with the views built on them, their options, owner,
  comment and grants), foreign keys from tables that are not ours (validated again: a key the
  rebuilt rows break refuses the whole swap), extra indexes on owned tables, the owned tables' grants;
- refused, naming them, before anything is changed: anything else (a trigger, rule or policy on an
  owned table, a materialized view, a function body or a column typed by an owned table, a
  publication, a column or constraint someone added to an owned table).

`swap_in` runs inside the caller's transaction: drop the dependent views and keys, move each live
owned table into a retired schema and its rebuilt twin into the live schema, recreate the
dependents, drop the retired tables (RESTRICT: anything overlooked fails the transaction instead of
being dropped along), drop the scratch schema. Tables that are not ours are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from projections.ownership import PROJECTED, owned_indexes
from projections.scratch import RETIRED_PREFIX, SCRATCH_PREFIX


class RebuildRefused(RuntimeError):
    """The rebuild cannot swap without breaking what others built on the owned tables."""


@dataclass(frozen=True)
class ViewDef:
    oid: int
    schema: str
    name: str
    definition: str
    options: tuple[str, ...]
    owner: str
    comment: str | None
    grants: tuple[tuple[str, str, bool], ...]  # (privilege, grantee or PUBLIC, grantable)

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class ForeignKeyDef:
    table: str  # schema-qualified, quoted as pg prints it
    name: str
    definition: str


@dataclass
class Dependents:
    views: list[ViewDef] = field(default_factory=list)  # in creation order (a view after those it reads)
    foreign_keys: list[ForeignKeyDef] = field(default_factory=list)
    extra_indexes: list[str] = field(default_factory=list)  # CREATE INDEX statements
    refused: list[str] = field(default_factory=list)  # descriptions of what cannot be carried over

    def describe(self) -> str:
        kept = [f"view {v.schema}.{v.name}" for v in self.views] + \
               [f"foreign key {k.name} on {k.table}" for k in self.foreign_keys]
        return ", ".join(kept) or "none"


_DEPENDENTS = """
SELECT DISTINCT d.classid::regclass::text, d.objid::bigint, d.objsubid,
       pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend d
WHERE d.deptype IN ('n', 'a')
  AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY(%(oids)s))
    OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = ANY(%(types)s)))
ORDER BY 1, 2, 3"""


def _table_oids(conn: psycopg.Connection, schema: str, tables: Iterable[str]) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        """SELECT c.relname, c.oid::bigint, c.reltype::bigint FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')""",
        (schema, list(tables))).fetchall()
    return {name: (oid, reltype) for name, oid, reltype in rows}


def _dependents_of(conn: psycopg.Connection, oids: list[int], types: list[int]) -> list[tuple]:
    return conn.execute(_DEPENDENTS, {"oids": oids, "types": types}).fetchall()


def inspect(conn: psycopg.Connection, live: str, rebuilt: str) -> Dependents:
    """What depends on the live schema's owned tables, and what of it can be carried over to their
    rebuilt twins in `rebuilt`. Run with search_path '' so every name comes out schema-qualified."""
    tables = _table_oids(conn, live, PROJECTED)
    owned = {oid for oid, _ in tables.values()}
    found = Dependents()
    _compare_with_rebuilt(conn, live, rebuilt, tables, found)
    view_oids: list[int] = []
    declared = owned_indexes()
    for catalog, objid, objsubid, what in _dependents_of(conn, sorted(owned), [t for _, t in tables.values()]):
        if catalog == "pg_class":
            kind = conn.execute(
                """SELECT c.relkind, i.indrelid::bigint, c.relname,
                          EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.conrelid = i.indrelid)
                   FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid WHERE c.oid = %s""",
                (objid,)).fetchone()
            if kind is not None and kind[0] == "S":
                continue  # a bigserial's sequence: moves with its table
            if kind is not None and kind[0] == "i" and kind[1] in owned and objsubid == 0:
                if kind[2] not in declared and not kind[3]:
                    found.extra_indexes.append(conn.execute("SELECT pg_get_indexdef(%s)", (objid,)).fetchone()[0])
                continue  # declared ones are rebuilt; constraint-backed ones are compared by constraint
            found.refused.append(what)
        elif catalog == "pg_constraint":
            conrelid, contype, name, table, definition = conn.execute(
                """SELECT conrelid::bigint, contype, conname, conrelid::regclass::text, pg_get_constraintdef(oid)
                   FROM pg_constraint WHERE oid = %s""", (objid,)).fetchone()
            if conrelid in owned:
                continue  # a constraint of an owned table: compared with the rebuilt table
            if contype == "f":
                found.foreign_keys.append(ForeignKeyDef(table, name, definition))
            else:
                found.refused.append(what)
        elif catalog == "pg_attrdef":
            table = conn.execute("SELECT adrelid::bigint FROM pg_attrdef WHERE oid = %s", (objid,)).fetchone()[0]
            if table not in owned:
                found.refused.append(what)
        elif catalog == "pg_rewrite":
            view = _view_of_rule(conn, objid)
            if view is None or view in owned:
                found.refused.append(what)
            else:
                view_oids.append(view)
        else:
            found.refused.append(what)
    found.views = _view_closure(conn, view_oids, found)
    return found


def _view_of_rule(conn: psycopg.Connection, rule_oid: int) -> int | None:
    """The plain view whose SELECT rule this is; None for any other rule (or a materialized view)."""
    row = conn.execute(
        """SELECT r.ev_class::bigint FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
           WHERE r.oid = %s AND r.rulename = '_RETURN' AND c.relkind = 'v'""", (rule_oid,)).fetchone()
    return row[0] if row else None


def _view_closure(conn: psycopg.Connection, roots: list[int], found: Dependents) -> list[ViewDef]:
    """The views in `roots` and every view built on them, each after the views it reads."""
    order: list[int] = []
    seen: set[int] = set()
    reads: dict[int, set[int]] = {}
    pending = list(dict.fromkeys(roots))
    while pending:
        view = pending.pop()
        if view in seen:
            continue
        seen.add(view)
        order.append(view)
        triggers = conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s", (view,)).fetchall()
        for (name,) in triggers:
            found.refused.append(f"trigger {name} on view {_regclass(conn, view)}")
        for catalog, objid, _sub, what in _dependents_of(conn, [view], _row_types(conn, [view])):
            if catalog == "pg_rewrite" and (child := _view_of_rule(conn, objid)) is not None and child != view:
                reads.setdefault(child, set()).add(view)
                pending.append(child)
            elif catalog == "pg_rewrite" and _view_of_rule(conn, objid) == view:
                continue
            else:
                found.refused.append(f"{what} (depends on view {_regclass(conn, view)})")
    ordered: list[int] = []
    while len(ordered) < len(order):  # topological: a view once every view it reads is placed
        ready = [v for v in order if v not in ordered and reads.get(v, set()) <= set(ordered)]
        if not ready:
            raise RebuildRefused("views depend on each other in a cycle")
        ordered.extend(ready)
    return [_view_def(conn, oid) for oid in ordered]


def _row_types(conn: psycopg.Connection, oids: list[int]) -> list[int]:
    return [r[0] for r in conn.execute("SELECT reltype::bigint FROM pg_class WHERE oid = ANY(%s)", (oids,)).fetchall()]


def _regclass(conn: psycopg.Connection, oid: int) -> str:
    return conn.execute("SELECT %s::regclass::text", (oid,)).fetchone()[0]


def _view_def(conn: psycopg.Connection, oid: int) -> ViewDef:
    schema, name, definition, options, owner, comment = conn.execute(
        """SELECT n.nspname, c.relname, pg_get_viewdef(c.oid), coalesce(c.reloptions, '{}'),
                  pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s""", (oid,)).fetchone()
    return ViewDef(oid, schema, name, definition.rstrip().rstrip(";"), tuple(options), owner, comment,
                   _grants(conn, oid))


def _grants(conn: psycopg.Connection, oid: int) -> tuple[tuple[str, str, bool], ...]:
    rows = conn.execute(
        """SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                  a.is_grantable
           FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s AND a.grantee <> c.relowner
           ORDER BY 2, 1""", (oid,)).fetchall()
    return tuple((p, g, bool(w)) for p, g, w in rows)


def _compare_with_rebuilt(conn: psycopg.Connection, live: str, rebuilt: str, tables: dict[str, tuple[int, int]],
                          found: Dependents) -> None:
    """Columns and constraints someone added to a live owned table would be lost with it: refused."""
    for kind, query in (
        ("column", "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"),
        ("constraint", "SELECT conname FROM pg_constraint WHERE conrelid = %s"),
    ):
        for table, (oid, _type) in sorted(tables.items()):
            twin = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid::bigint",
                                (rebuilt, table)).fetchone()[0]
            if twin is None:
                found.refused.append(f"table {live}.{table} has no rebuilt twin in {rebuilt}")
                continue
            ours = {r[0] for r in conn.execute(query, (twin,)).fetchall()}
            for (name,) in conn.execute(query, (oid,)).fetchall():
                if name not in ours:
                    found.refused.append(f"{kind} {name} of table {live}.{table} (not created by lc migrate)")


def table_grants(conn: psycopg.Connection, schema: str, table: str) -> tuple[tuple[str, str, bool], ...]:
    oid = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid::bigint",
                       (schema, table)).fetchone()[0]
    return () if oid is None else _grants(conn, oid)


def _grant(conn: psycopg.Connection, target: sql.Composable, grants: Iterable[tuple[str, str, bool]]) -> None:
    for privilege, grantee, grantable in grants:
        who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
        conn.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(
            sql.SQL(privilege), target, who, sql.SQL(" WITH GRANT OPTION" if grantable else "")))


def refusal_message(found: Dependents) -> str:
    return ("refusing to swap the rebuilt tables in: these depend on tables the pipeline owns and cannot be carried "
            f"over: {'; '.join(found.refused)}. Nothing was changed; drop or move them, then rebuild "
            "(docs/webapp.md, \"Rebuild and the web app's objects\")")


def swap_in(conn: psycopg.Connection, live: str, rebuilt: str) -> Dependents:
    """Swap every owned table of `rebuilt` into `live`, in the caller's transaction."""
    conn.execute("SELECT set_config('search_path', '', true)")
    found = inspect(conn, live, rebuilt)
    if found.refused:
        raise RebuildRefused(refusal_message(found))
    grants = {table: table_grants(conn, live, table) for table in PROJECTED}
    for view in reversed(found.views):
        conn.execute(sql.SQL("DROP VIEW {}").format(view.ident))
    for key in found.foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(key.table), sql.Identifier(key.name)))
    retired = RETIRED_PREFIX + rebuilt.removeprefix(SCRATCH_PREFIX)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
    for table in PROJECTED:
        conn.execute(sql.SQL("ALTER TABLE IF EXISTS {} SET SCHEMA {}").format(
            sql.Identifier(live, table), sql.Identifier(retired)))
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
            sql.Identifier(rebuilt, table), sql.Identifier(live)))
        _grant(conn, sql.Identifier(live, table), grants[table])
    for statement in found.extra_indexes:
        conn.execute(statement)
    for key in found.foreign_keys:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.SQL(key.table), sql.Identifier(key.name), sql.SQL(key.definition)))
        except psycopg.errors.ForeignKeyViolation as exc:
            raise RebuildRefused(f"refusing to swap the rebuilt tables in: foreign key {key.name} on {key.table} "
                                 f"does not hold for the rebuilt rows ({exc.diag.message_detail}); nothing was "
                                 "changed") from None
    for view in found.views:
        _create_view(conn, view)
    retired_tables = [sql.Identifier(retired, t) for t in PROJECTED]
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} RESTRICT").format(sql.SQL(", ").join(retired_tables)))
    conn.execute(sql.SQL("DROP SCHEMA {} RESTRICT").format(sql.Identifier(retired)))
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(rebuilt)))
    return found


def _create_view(conn: psycopg.Connection, view: ViewDef) -> None:
    options = sql.SQL("")
    if view.options:
        options = sql.SQL(" WITH ({})").format(sql.SQL(", ").join(sql.SQL(o) for o in view.options))
    conn.execute(sql.SQL("CREATE VIEW {}{} AS {}").format(view.ident, options, sql.SQL(view.definition)))
    if view.owner != conn.execute("SELECT current_user").fetchone()[0]:
        conn.execute(sql.SQL("ALTER VIEW {} OWNER TO {}").format(view.ident, sql.Identifier(view.owner)))
    if view.comment is not None:
        conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(view.ident, sql.Literal(view.comment)))
    _grant(conn, view.ident, view.grants)
