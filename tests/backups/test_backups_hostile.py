"""Backups off the host as an operator gets them wrong and as the world
interrupts them: maintctl run as a process against a real SeaweedFS and
real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import CLEAN_ENV, NOW, Core, until


def test_doctor_checks_a_configuration_whose_destinations_are_all_urls(maintctl, core, s3_server):
    url = s3_server.url()

    result = maintctl("doctor", "--db", core.path, env={"MAINTCTL_BACKUP_TO": f"{url} file:///nowhere/offsite"})

    assert "unexpected" not in result.err, result
    assert "Traceback" not in result.err
    assert "backup destination" in result.out
    assert url.split("?")[0] in result.out
    assert "AWS_" not in result.out


def test_an_ssh_key_as_its_pub_file_writes_it_is_a_recipient_and_its_private_key_reads_the_copy(
    maintctl, core, tmp_path
):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", key], check=True)
    public = key.with_suffix(".pub").read_text().strip()  # "ssh-ed25519 AAAA… me@laptop"
    core.reminder("r1")
    env = {"MAINTCTL_BACKUP_RECIPIENTS": public, "MAINTCTL_BACKUP_IDENTITY": str(key)}

    backup = maintctl("backup", "--db", core.path, "--now", NOW, "--to", f"file://{tmp_path}/offsite", env=env)
    verify = maintctl("verify-backups", "--db", core.path, "--to", f"file://{tmp_path}/offsite", env=env)

    assert backup.code == 0, backup
    (copy,) = [name for name in os.listdir(tmp_path / "offsite") if name.endswith(".age")]
    decrypted = subprocess.run(
        ["age", "-d", "-i", key, tmp_path / "offsite" / copy], check=True, capture_output=True
    ).stdout
    assert decrypted.startswith(b"SQLite format 3\x00")
    assert verify.code == 0, verify
    assert "decrypted" in verify.out and "integrity_check ok" in verify.out


def fill(core: Core, megabytes: int) -> None:
    """Make the database megabytes larger (random bytes: encryption cannot shrink them)."""
    core.sql("CREATE TABLE IF NOT EXISTS ballast (bytes BLOB)")
    for _ in range(megabytes):
        core.sql("INSERT INTO ballast VALUES (?)", os.urandom(1 << 20))


def test_a_verify_killed_while_it_holds_a_decrypted_copy_leaves_it_to_the_next_fetch_to_remove(
    maintctl, core, tmp_path
):
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
    env = {"MAINTCTL_BACKUP_RECIPIENTS": public, "MAINTCTL_BACKUP_IDENTITY": str(key)}
    fill(core, 60)
    offsite = f"file://{tmp_path}/offsite"
    assert maintctl("backup", "--db", core.path, "--now", NOW, "--to", offsite, env=env).code == 0

    def fetched() -> list[str]:
        return [name for name in os.listdir(core.path.parent) if "maintctl-fetched" in name]

    killed = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "verify-backups", "--db", str(core.path), "--to", offsite],
        env={**CLEAN_ENV, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    until(lambda: fetched() or killed.poll() is not None, "a copy being fetched")
    killed.kill()
    killed.wait()
    left = fetched()
    assert left, "the verify ended before it could be killed"
    again = maintctl("verify-backups", "--db", core.path, "--to", offsite, env=env)

    assert again.code == 0, again
    assert fetched() == []


def test_what_a_backup_killed_as_it_copied_leaves_the_next_backup_removes_whatever_its_destinations(
    maintctl, core, tmp_path
):
    fill(core, 60)
    env = {"MAINTCTL_BACKUP_PLAINTEXT": "yes"}

    def left_beside() -> list[str]:
        return [name for name in os.listdir(core.path.parent) if name.startswith(f".{core.path.name}.backup-")]

    def left_in_local() -> list[str]:
        return [name for name in os.listdir(tmp_path / "local") if ".partial" in name]

    def kill_as_it_copies(to: str, left) -> None:
        killed = subprocess.Popen(
            [sys.executable, "-m", "maintctl", "backup", "--db", str(core.path), "--now", NOW, "--to", to],
            env={**CLEAN_ENV, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        until(lambda: any(name.endswith("-journal") for name in left()) or killed.poll() is not None, "a copy")
        killed.kill()
        killed.wait()
        assert left(), "the backup ended before it could be killed"

    kill_as_it_copies(f"file://{tmp_path}/offsite", left_beside)
    (tmp_path / "local").mkdir()
    kill_as_it_copies(str(tmp_path / "local"), left_in_local)
    later = "2026-11-22T10:30:00.000Z"  # a copy of another name: no SQLite reads the killed one's journal back
    local = maintctl("backup", "--db", core.path, "--now", later, "--to", tmp_path / "local", env=env)

    assert local.code == 0, local
    assert left_beside() == []
    assert left_in_local() == []


def test_a_copy_named_after_now_by_a_clock_that_ran_ahead_is_not_taken_for_the_newest(maintctl, core, tmp_path):
    offsite = f"file://{tmp_path}/offsite"
    env = {"MAINTCTL_BACKUP_PLAINTEXT": "yes", "MAINTCTL_BACKUP_TO": offsite}
    ahead = maintctl("backup", "--db", core.path, "--now", "2099-01-01T00:00:00Z", "--keep", "9", env=env)
    core.reminder("r1")
    taken = maintctl("backup", "--db", core.path, "--now", "2026-11-19T09:30:00Z", "--keep", "9", env=env)
    assert ahead.code == 0 and taken.code == 0, (ahead, taken)

    status = maintctl("status", "--db", core.path, "--now", NOW, "--json", env=env)
    restore = maintctl("restore", "--db", core.path, offsite, "--dry-run", env=env)
    verify = maintctl("verify-backups", "--db", core.path, "--now", NOW, env=env)

    (destination,) = status.json()["backups"]["destinations"]
    assert destination["newest"].endswith("-20261119T093000Z.sqlite3"), destination
    assert status.code == 1 and any("3d 0h old" in said for said in status.json()["attention"]), status.out
    assert "-20261119T093000Z.sqlite3," in restore.out, restore
    assert verify.code == 0, verify
    assert "-20261119T093000Z.sqlite3: verified" in verify.out, verify.out


def test_a_bucket_without_credentials_in_the_environment_says_so_at_once_and_the_directory_is_written(
    maintctl, core, s3_server, tmp_path
):
    url = s3_server.url()
    env = {"MAINTCTL_BACKUP_PLAINTEXT": "yes"}  # no AWS_*: the client would ask the instance metadata's address
    began = time.monotonic()

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--to", tmp_path / "local", env=env)

    assert time.monotonic() - began < 10
    assert result.code == 1, result
    assert f"{url}: no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set in the environment" in result.err
    assert len([name for name in os.listdir(tmp_path / "local") if name.endswith(".sqlite3")]) == 1


def test_one_place_named_twice_is_written_once(maintctl, core, s3_server, tmp_path):
    url = s3_server.url()
    path, _, query = url.partition("?")
    env = {**s3_server.env, "MAINTCTL_BACKUP_PLAINTEXT": "yes"}
    (tmp_path / "d").mkdir()
    named = ["--to", "d/loc", "--to", "./d/loc/", "--to", url, "--to", f"{path}/?{query}"]

    result = maintctl("backup", "--db", core.path, "--now", NOW, *named, "--json", env=env, cwd=tmp_path)

    assert result.code == 0, result
    assert result.action("backup")["counts"]["written"] == 2
    assert len(list((tmp_path / "d" / "loc").glob("core.db-*.sqlite3"))) == 1
    listed = maintctl("backups", "--db", core.path, *named, "--json", env=env, cwd=tmp_path)
    assert [len(found["copies"]) for found in listed.json()["destinations"]] == [1, 1]
