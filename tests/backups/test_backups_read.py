"""Backups read back, against real stores (directories, file:// and a real
SeaweedFS) with maintctl run as a process: `backups` lists the copies,
verify-backups catches a changed byte, restore takes the copy of a time from
a destination and decrypts it, status and the metrics tell a stale
destination. Copies are written as the contract lays them out
(backup_copies.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from backup_copies import age_key, take, take_by_hand
from conftest import NOW
from s3_store import SECRET_KEY

from maintctl.backups import destinations

MONDAY, TUESDAY, WEDNESDAY = "2026-11-16T03:00:00Z", "2026-11-17T03:00:00Z", "2026-11-18T03:00:00Z"


def memories(path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [memory_id for (memory_id,) in connection.execute("SELECT id FROM memories ORDER BY id")]
    finally:
        connection.close()


def no_secret(*results) -> None:
    for result in results:
        assert SECRET_KEY not in result.out and SECRET_KEY not in result.err


def tamper(destination_text: str, name: str, env: dict, at: int = 5000) -> None:
    """Change one byte of a stored copy, keeping its name and manifest (for s3: a new object written in its place)."""
    import os

    os.environ.update(env)
    destination = destinations.parse(destination_text)
    data = bytearray(b"".join(bytes(chunk) for chunk in destination.chunks(name)))
    data[at] ^= 0x01
    destination.delete(name)
    destination.put_bytes(name, bytes(data))


@pytest.fixture
def s3(s3_server, monkeypatch):
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


class TestListing:
    def test_two_destinations_listed_one_failing_named_exit_1(self, maintctl, core, s3, tmp_path):
        bucket = s3.url()
        take(core.path, bucket, MONDAY)
        take(core.path, bucket, TUESDAY)
        take(core.path, f"file://{tmp_path}/copies", TUESDAY)
        broken = "s3://nosuchbucket/x?endpoint=http://127.0.0.1:9&region=us-east-1&path_style=true"

        result = maintctl("backups", "--db", core.path, "--to", bucket, "--to", broken, "--json", env=s3.env)
        assert result.code == 1, result
        listed = result.json()["destinations"]
        assert [entry["destination"] for entry in listed] == [destinations.parse(bucket).shown, broken]
        assert [copy["created_at"] for copy in listed[0]["copies"]] == [
            "2026-11-16T03:00:00.000Z",
            "2026-11-17T03:00:00.000Z",
        ]
        assert listed[0]["copies"][0]["encrypted"] is False and listed[0]["copies"][0]["size"] > 0
        assert listed[1]["copies"] == [] and broken in listed[1]["error"]
        assert f"maintctl: error: {broken}: could not be listed" in result.err

        text = maintctl("backups", "--db", core.path, "--to", f"file://{tmp_path}/copies", env=s3.env)
        assert text.code == 0 and "1 copy" in text.out and "20261117T030000Z" in text.out
        no_secret(result, text)


class TestVerify:
    def test_a_changed_byte_in_a_plain_copy_fails_naming_copy_and_destination(self, maintctl, core, tmp_path):
        to = f"file://{tmp_path}/copies"
        take(core.path, to, MONDAY)
        newest = take(core.path, to, TUESDAY)
        good = maintctl("verify-backups", "--db", core.path, "--to", to, "--now", NOW, "--json")
        assert good.code == 0, good
        assert good.action("verify-backups")["counts"] == {"verified": 2, "failed": 0}

        tamper(to, newest, {})
        bad = maintctl("verify-backups", "--db", core.path, "--to", to, "--now", NOW, "--json")
        assert bad.code == 1, bad
        action = bad.action("verify-backups")
        assert action["counts"] == {"verified": 1, "failed": 1}
        assert f"{to}: {newest}: does not match its manifest (its sha256 differs)" in action["error"]
        assert list((tmp_path).glob(".maintctl-fetched-*")) == []  # nothing left behind

    def test_a_changed_byte_in_an_encrypted_s3_copy_fails_and_a_good_one_is_decrypted_and_checked(
        self, maintctl, core, s3, tmp_path
    ):
        key, public = age_key(tmp_path)
        bucket = s3.url()
        older = take(core.path, bucket, MONDAY, recipients=public)
        newest = take(core.path, bucket, TUESDAY, recipients=public)
        env = {**s3.env, "MAINTCTL_BACKUP_IDENTITY": str(key)}
        good = maintctl("verify-backups", "--db", core.path, "--to", bucket, "--now", NOW, env=env)
        assert good.code == 0, good
        assert f"{newest}: verified (sha256, decrypted, plain_sha256, integrity_check ok)" in good.out
        assert f"{older}: verified" in good.out

        tamper(bucket, newest, s3.env, at=200)
        bad = maintctl("verify-backups", "--db", core.path, "--to", bucket, "--now", NOW, "--json", env=env)
        assert bad.code == 1, bad
        shown = destinations.parse(bucket).shown
        assert f"{shown}: {newest}: does not match its manifest" in bad.action("verify-backups")["error"]
        no_secret(good, bad)

    def test_a_key_that_does_not_read_the_copies_fails_verify_and_restore_and_changes_nothing(
        self, maintctl, core, s3, tmp_path
    ):
        _, public = age_key(tmp_path)
        (tmp_path / "other").mkdir()
        other_key, _ = age_key(tmp_path / "other")
        bucket = s3.url()
        name = take(core.path, bucket, MONDAY, recipients=public)
        before = core.data_digest()
        env = {**s3.env, "MAINTCTL_BACKUP_IDENTITY": str(other_key)}

        verify = maintctl("verify-backups", "--db", core.path, "--to", bucket, "--now", NOW, "--json", env=env)
        restore = maintctl("restore", bucket, "--db", core.path, env=env)

        shown = destinations.parse(bucket).shown
        assert verify.code == 1, verify
        error = verify.action("verify-backups")["error"]
        assert f"{shown}: {name}: cannot be decrypted with MAINTCTL_BACKUP_IDENTITY's keys" in error
        assert restore.code == 2, restore
        assert f"{shown}: {name}: cannot be decrypted" in restore.err and "nothing was restored" in restore.err
        assert core.data_digest() == before  # only verify-backups' run recorded
        assert list(tmp_path.glob(".maintctl-fetched-*")) == []
        no_secret(verify, restore)

    def test_with_the_identity_a_copy_whose_sqlite_file_is_damaged_fails_integrity_check(
        self, maintctl, core, tmp_path
    ):
        """A copy whose manifest was written for damaged bytes (as stored, they match): only decrypting it and
        running integrity_check finds it."""
        from conftest import damage_an_index_page

        key, public = age_key(tmp_path)
        damaged = tmp_path / "damaged" / "core.db"
        damaged.parent.mkdir()
        damaged.write_bytes(damage_an_index_page(core))
        to = f"file://{tmp_path}/copies"
        name = take_by_hand(damaged, to, TUESDAY, recipients=public)
        result = maintctl(
            "verify-backups",
            "--db",
            damaged,
            "--to",
            to,
            "--now",
            NOW,
            env={"MAINTCTL_BACKUP_IDENTITY": str(key)},
        )
        assert result.code == 1, result
        assert f"{to}: {name}: fails PRAGMA integrity_check" in result.err

    def test_a_dry_run_names_the_copies_it_would_fetch_and_fetches_nothing(self, maintctl, core, tmp_path):
        to = f"file://{tmp_path}/copies"
        for at in (MONDAY, TUESDAY, WEDNESDAY):
            take(core.path, to, at)
        dry = maintctl("verify-backups", "--db", core.path, "--to", to, "--now", NOW, "--dry-run", "--json")
        assert dry.code == 0, dry
        planned = dry.action("verify-backups")["planned"]
        assert len(planned) == 2 and planned[0]["id"].endswith("20261118T030000Z.sqlite3")
        run = maintctl("verify-backups", "--db", core.path, "--to", to, "--now", NOW, "--json")
        verified = [note.split(": ")[1] for note in run.action("verify-backups")["notes"]]
        assert verified == [entry["id"] for entry in planned]  # the draw of a --now is the same

    def test_run_all_runs_it_weekly_after_backup(self, maintctl, core):
        first = maintctl("run-all", "--db", core.path, "--now", NOW, "--json")
        assert [action["action"] for action in first.json()["actions"]][-2:] == ["backup", "verify-backups"]
        assert first.action("verify-backups")["status"] == "ok"
        assert first.action("verify-backups")["counts"]["verified"] == 1
        later = maintctl("run-all", "--db", core.path, "--now", "2026-11-25T09:30:00Z", "--json")
        assert later.action("verify-backups")["status"] == "skipped"


class TestRestore:
    def test_at_a_time_from_a_directory_takes_the_newest_copy_at_or_before_it(self, maintctl, core, tmp_path):
        to = str(tmp_path / "copies")
        core.memory("monday")
        take(core.path, to, MONDAY)
        core.memory("tuesday")
        tuesday = take(core.path, to, TUESDAY)
        core.memory("wednesday")
        take(core.path, to, WEDNESDAY)
        core.connection.close()

        result = maintctl("restore", to, "--db", core.path, "--at", "2026-11-17T12:00:00Z", "--json")
        assert result.code == 0, result
        assert result.json()["source"] == f"{to}: {tuesday}"
        assert memories(core.path) == ["monday", "tuesday"]
        assert list(tmp_path.glob("core.db.replaced-*"))

    def test_from_s3_decrypted_with_the_identity(self, maintctl, core, s3, tmp_path):
        key, public = age_key(tmp_path)
        bucket = s3.url()
        core.memory("kept")
        take(core.path, bucket, MONDAY, recipients=public)
        core.memory("after")
        core.connection.close()
        env = {**s3.env, "MAINTCTL_BACKUP_IDENTITY": str(key)}

        dry = maintctl("restore", bucket, "--db", core.path, "--dry-run", env=env)
        assert dry.code == 0 and "would fetch" in dry.out and memories(core.path) == ["after", "kept"]
        result = maintctl("restore", bucket, "--db", core.path, env=env)
        assert result.code == 0, result
        assert memories(core.path) == ["kept"]
        assert list(tmp_path.glob(".maintctl-fetched-*")) == []  # the fetched and decrypted files are gone
        without = maintctl("restore", bucket, "--db", core.path, env=s3.env)
        assert without.code == 2 and "MAINTCTL_BACKUP_IDENTITY is not set" in without.err
        no_secret(dry, result, without)

    def test_on_a_new_host_the_newest_copy_makes_the_database(self, maintctl, core, s3, tmp_path):
        """The host was lost: no database at the path, and copies of one database of that name in the store."""
        key, public = age_key(tmp_path)
        bucket = s3.url()
        core.memory("kept")
        take(core.path, bucket, MONDAY, recipients=public)
        new = tmp_path / "new-host" / "core.db"
        new.parent.mkdir()
        env = {**s3.env, "MAINTCTL_BACKUP_IDENTITY": str(key)}

        dry = maintctl("restore", bucket, "--db", new, "--dry-run", env=env)
        assert dry.code == 0 and "would be made from" in dry.out and not new.exists()
        done = maintctl("restore", bucket, "--db", new, "--json", env=env)
        assert done.code == 0, done
        assert done.json()["replaced"] is None
        assert memories(new) == ["kept"]
        assert sorted(path.name for path in new.parent.iterdir()) == ["core.db"]  # nothing fetched left beside it
        assert new.stat().st_mode & 0o777 == 0o600
        no_secret(dry, done)

    def test_on_a_new_host_a_journal_left_without_its_database_is_refused(self, maintctl, core, s3, tmp_path):
        bucket = s3.url()
        take(core.path, bucket, MONDAY)
        new = tmp_path / "new-host" / "core.db"
        new.parent.mkdir()
        (new.parent / "core.db-wal").write_bytes(b"stale")

        result = maintctl("restore", bucket, "--db", new, env=s3.env)
        assert result.code == 2
        assert (
            result.err
            == f"maintctl: error: {new}-wal: is there without its database; move it away (it would be read into the restored one)\n"
        )
        assert not new.exists()

    def test_on_a_new_host_copies_of_two_databases_of_that_name_must_be_named(self, maintctl, core, s3, tmp_path):
        from conftest import new_core

        bucket = s3.url()
        (tmp_path / "other").mkdir()
        other = new_core(tmp_path / "other" / "core.db")
        take(core.path, bucket, MONDAY)
        take(other.path, bucket, TUESDAY)
        new = tmp_path / "new-host" / "core.db"
        new.parent.mkdir()

        result = maintctl("restore", bucket, "--db", new, env=s3.env)
        assert result.code == 2
        assert "copies of 2 databases named core.db" in result.err and "name the copy to restore" in result.err
        assert not new.exists()

    def test_a_copy_named_by_its_url(self, maintctl, core, s3, tmp_path):
        bucket = s3.url()
        core.memory("monday")
        monday = take(core.path, bucket, MONDAY)
        core.memory("tuesday")
        take(core.path, bucket, TUESDAY)
        core.connection.close()
        path, _, query = bucket.partition("?")
        result = maintctl("restore", f"{path}/{monday}?{query}", "--db", core.path, env=s3.env)
        assert result.code == 0, result
        assert memories(core.path) == ["monday"]

    def test_no_copy_at_or_before_the_time_exits_2_naming_destination_and_time(self, maintctl, core, s3):
        bucket = s3.url()
        take(core.path, bucket, TUESDAY)
        before = core.digest()
        result = maintctl("restore", bucket, "--db", core.path, "--at", MONDAY, env=s3.env)
        assert result.code == 2, result
        shown = destinations.parse(bucket).shown
        assert (
            f"{shown}: no copy of core.db (id " in result.err and "at or before 2026-11-16T03:00:00.000Z" in result.err
        )
        assert core.digest() == before

    def test_a_changed_byte_is_refused_and_nothing_restored(self, maintctl, core, tmp_path):
        to = f"file://{tmp_path}/copies"
        name = take(core.path, to, MONDAY)
        tamper(to, name, {})
        before = core.digest()
        result = maintctl("restore", to, "--db", core.path)
        assert result.code == 2 and "does not match its manifest" in result.err and "nothing was restored" in result.err
        assert core.digest() == before


class TestStatusAndMetrics:
    def test_a_stale_destination_exits_1_naming_it_and_a_fresh_one_exits_0(self, maintctl, core, s3, tmp_path):
        bucket = s3.url()
        take(core.path, bucket, "2026-11-19T09:00:00Z")  # 3 days before NOW
        fresh = tmp_path / "fresh"
        take(core.path, str(fresh), "2026-11-22T03:00:00Z")
        ran = maintctl("backup", "--db", core.path, "--now", "2026-11-22T03:00:00Z", "--to", str(fresh / "x"))
        assert ran.code == 0, ran  # backup has run here: its copies' age is judged

        stale = maintctl("status", "--db", core.path, "--now", NOW, "--to", bucket, "--to", str(fresh), env=s3.env)
        assert stale.code == 1, stale
        shown = destinations.parse(bucket).shown
        assert f"backups at {shown}: the newest copy" in stale.err and "3d 0h old" in stale.err
        assert str(fresh) not in stale.err
        good = maintctl("status", "--db", core.path, "--now", NOW, "--to", str(fresh), "--json", env=s3.env)
        assert good.code == 0, good
        assert good.json()["backups"]["destinations"][0]["created_at"] == "2026-11-22T03:00:00.000Z"
        no_secret(stale, good)

    def test_a_paused_backup_is_not_judged(self, maintctl, core, tmp_path):
        take(core.path, str(tmp_path / "old"), "2026-11-01T03:00:00Z")
        maintctl("backup", "--db", core.path, "--now", "2026-11-01T03:00:00Z", "--to", str(tmp_path / "x"))
        assert maintctl("status", "--db", core.path, "--now", NOW, "--to", str(tmp_path / "old")).code == 1
        maintctl("pause", "backup", "--db", core.path, "--now", NOW)
        paused = maintctl("status", "--db", core.path, "--now", NOW, "--to", str(tmp_path / "old"))
        assert paused.code == 0 and "backup is paused: the copies' age is not judged" in paused.out

    def test_metrics_per_destination_listed_by_backup_runs_and_carried_by_others(self, maintctl, core, s3, tmp_path):
        bucket = s3.url()
        take(core.path, bucket, TUESDAY)
        metrics = tmp_path / "maintctl.prom"
        env = {**s3.env, "MAINTCTL_METRICS_FILE": str(metrics), "MAINTCTL_BACKUP_TO": bucket}
        shown = destinations.parse(bucket).shown
        at = datetime(2026, 11, 17, 3, tzinfo=UTC).timestamp()
        line = f'maintctl_backup_newest_timestamp_seconds{{destination="{shown}"}} {at!r}'

        assert maintctl("fire-reminders", "--db", core.path, "--now", NOW, env=env).code == 0
        assert line not in metrics.read_text()  # a bucket is not listed by a run without backup
        verified = maintctl("verify-backups", "--db", core.path, "--now", NOW, env=env)
        assert verified.code == 0, verified
        assert line in metrics.read_text().splitlines()
        assert f'maintctl_backup_newest_bytes{{destination="{shown}"}} ' in metrics.read_text()
        assert maintctl("fire-reminders", "--db", core.path, "--now", NOW, env=env).code == 0
        assert line in metrics.read_text().splitlines()  # carried over
        assert SECRET_KEY not in metrics.read_text()
