"""optimize: SQLite's own housekeeping on real files: the WAL checkpointed
and truncated while the app keeps it open, statistics for the planner, and a
damaged file found and named."""

import sqlite3

import pytest
from conftest import NOW, damage_an_index_page


def optimize(maintctl, core, *extra, env=None):
    return maintctl("optimize", "--db", core.path, "--now", NOW, "--json", *extra, env=env)


def app_with_a_big_wal(core) -> sqlite3.Connection:
    """Return the app's connection, left open and idle, having written more than a megabyte into the WAL
    with automatic checkpoints off."""
    core.connection.close()
    app = sqlite3.connect(core.path, isolation_level=None)
    app.execute("PRAGMA journal_mode = WAL")
    app.execute("PRAGMA wal_autocheckpoint = 0")
    app.execute("INSERT OR IGNORE INTO users (telegram_user_id) VALUES (1001)")
    for batch in range(20):
        app.execute("BEGIN")
        app.executemany(
            "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, ?, 'confirmed')",
            ((f"m{batch}-{index}", "x" * 500) for index in range(200)),
        )
        app.execute("COMMIT")
    assert core.path.with_name("core.db-wal").stat().st_size > 1_048_576
    return app


def test_the_wal_is_checkpointed_and_truncated_while_the_app_keeps_it_open(maintctl, core):
    app = app_with_a_big_wal(core)
    wal = core.path.with_name("core.db-wal")
    before = wal.stat().st_size

    result = optimize(maintctl, core)

    assert result.code == 0, result
    counts = result.action("optimize")["counts"]
    assert counts["wal_pages_checkpointed"] > 250
    assert counts["bytes_freed"] >= before  # and the pages its ANALYZE wrote
    assert wal.stat().st_size < 65_536  # truncated; what is in it now is the run's own history row
    assert app.execute("SELECT count(*) FROM memories").fetchone() == (4000,)  # the app reads on
    app.close()
    assert sqlite3.connect(core.path).execute("SELECT count(*) FROM memories").fetchone() == (4000,)


def test_with_checkpoint_off_the_wal_is_left_to_litestream(maintctl, core):
    app = app_with_a_big_wal(core)
    wal = core.path.with_name("core.db-wal")
    before = wal.stat().st_size

    result = optimize(maintctl, core, env={"MAINTCTL_CHECKPOINT": "off"})

    assert result.code == 0, result
    assert result.action("optimize")["counts"]["wal_pages_checkpointed"] == 0
    assert wal.stat().st_size >= before
    app.close()


def test_a_reader_in_the_wal_keeps_it_from_being_truncated_and_says_so(maintctl, core):
    app = app_with_a_big_wal(core)
    reader = sqlite3.connect(core.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM memories").fetchone()  # a read transaction on the WAL's last frame

    result = optimize(maintctl, core)

    assert result.code == 0, result
    (warning,) = result.action("optimize")["warnings"]
    assert warning.startswith("the WAL was not truncated: another connection was using it")
    reader.close()
    app.close()


def test_a_database_never_analysed_gets_its_statistics(maintctl, core):
    core.reminder("r1")
    assert not core.sql("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'")

    result = optimize(maintctl, core)
    again = optimize(maintctl, core)

    assert result.code == 0, result
    assert result.action("optimize")["counts"]["tables_analysed"] >= 5
    assert {"reminders", "memories"} <= {table for (table,) in core.sql("SELECT DISTINCT tbl FROM sqlite_stat1")}
    assert again.action("optimize")["counts"]["tables_analysed"] == 0  # nothing stale since


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(maintctl, core):
    app = app_with_a_big_wal(core)  # held open: the last connection to close checkpoints the WAL itself
    wal = core.path.with_name("core.db-wal")
    before = (core.path.read_bytes(), wal.read_bytes())

    result = optimize(maintctl, core, "--dry-run")

    assert result.code == 0, result
    planned = result.action("optimize")["planned"]
    assert {item["step"] for item in planned} == {"analysed", "checkpointed", "checked"}
    assert next(item for item in planned if item["step"] == "checkpointed")["pages"] > 250
    assert (core.path.read_bytes(), wal.read_bytes()) == before
    app.close()


@pytest.mark.parametrize("command", ["optimize", "run-all"])
def test_a_damaged_file_fails_with_what_quick_check_found_and_is_not_written(maintctl, core, command):
    damage_an_index_page(core)

    result = maintctl(command, "--db", core.path, "--now", NOW, "--json")

    assert result.code == 1, result
    error = result.action("optimize")["error"]
    assert error.startswith("the database is damaged: PRAGMA quick_check found: ")
    assert not sqlite3.connect(core.path).execute("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").fetchall()
