"""`lc migrate`: applied once, re-running is a no-op, an edited applied file is refused, runners race safely."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from cli.settings import Settings
from projections.migrate import MIGRATIONS_DIR, MigrationChanged, load_migrations, migrate


def _copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    return folder


def _applied(dsn: str, schema: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT filename, checksum FROM {schema}.lc_pipeline_migrations ORDER BY id").fetchall()


def test_every_file_applied_once_in_order_and_rerun_is_a_no_op(settings: Settings) -> None:
    # the fixture migrated `public` already
    expected = [(m.filename, m.checksum) for m in load_migrations()]
    assert _applied(settings.pg_dsn, "public") == expected
    assert migrate(settings.pg_dsn) == []
    assert _applied(settings.pg_dsn, "public") == expected


def test_a_changed_applied_migration_is_refused(settings: Settings, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationChanged, match=first.name):
        migrate(settings.pg_dsn, folder=folder)


def test_a_new_file_is_applied_and_a_failing_one_leaves_no_trace(settings: Settings, tmp_path: Path) -> None:
    folder = _copy_migrations(tmp_path)
    (folder / "900_extra.sql").write_text("CREATE TABLE extra_thing (id int);")
    (folder / "901_broken.sql").write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate(settings.pg_dsn, folder=folder)
    names = [name for name, _ in _applied(settings.pg_dsn, "public")]
    assert "900_extra.sql" in names and "901_broken.sql" not in names
    with psycopg.connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_concurrent_runners_apply_each_file_once(settings: Settings) -> None:
    schema = "race_target"
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            results.append(migrate(settings.pg_dsn, schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    applied_by_runners = sorted(name for names in results for name in names)
    assert applied_by_runners == sorted(m.filename for m in load_migrations())
    assert len(_applied(settings.pg_dsn, schema)) == len(load_migrations())
