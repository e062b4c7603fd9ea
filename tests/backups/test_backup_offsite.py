"""backup to URL destinations: maintctl run as a process against a real
S3-compatible store (SeaweedFS) and real directories through file://, the
copies read back with Debian's `age`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import CLEAN_ENV, NOW, Core, new_core, until
from s3_store import ACCESS_KEY, SECRET_KEY


class Store:
    """The bucket and prefix of an s3:// destination, read and written with the S3 client directly."""

    def __init__(self, url: str):
        import obstore
        from obstore.store import S3Store

        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        self.obstore, self.prefix = obstore, parts.path.strip("/")
        self.store = S3Store(
            parts.hostname, endpoint=options["endpoint"], region="us-east-1", virtual_hosted_style_request=False,
            access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, client_options={"allow_http": True},
        )  # fmt: skip

    def names(self) -> dict[str, int]:
        """Every object under the prefix (hidden ones too), with its size."""
        try:
            listed = self.obstore.list_with_delimiter(self.store, prefix=self.prefix)
        except self.obstore.exceptions.BaseError as error:
            if "NoSuchBucket" in str(error):
                return {}  # made by the first write to it
            raise
        return {item["path"].removeprefix(self.prefix + "/"): item["size"] for item in listed["objects"]}

    def get(self, name: str) -> bytes:
        return bytes(self.obstore.get(self.store, f"{self.prefix}/{name}").bytes())

    def put(self, name: str, data: bytes) -> None:
        self.obstore.put(self.store, f"{self.prefix}/{name}", data)


@pytest.fixture
def keys(tmp_path) -> dict[str, str]:
    """An age identity file made by age-keygen; the environment that encrypts to its public key."""
    identity = tmp_path / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    (public,) = [line.split(": ")[1] for line in identity.read_text().splitlines() if "public key:" in line]
    return {"MAINTCTL_BACKUP_RECIPIENTS": public, "identity": str(identity)}


@pytest.fixture
def env(s3_server, keys) -> dict[str, str]:
    return {**s3_server.env, "MAINTCTL_BACKUP_RECIPIENTS": keys["MAINTCTL_BACKUP_RECIPIENTS"]}


def copy_name(database: Core, stamp: str, suffix: str = ".sqlite3.age") -> str:
    (database_id,) = database.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
    return f"{database.path.name}-{database_id[:8]}-{stamp}{suffix}"


def decrypted(encrypted: bytes, identity: str, where: Path) -> Path:
    """Given an encrypted copy, return the SQLite file `age -d -i` makes of it."""
    (where / "copy.age").write_bytes(encrypted)
    subprocess.run(["age", "-d", "-i", identity, "-o", str(where / "copy.db"), str(where / "copy.age")], check=True)
    return where / "copy.db"


def test_an_encrypted_copy_goes_to_each_destination_and_age_reads_it(maintctl, core, s3_server, env, keys, tmp_path):
    import hashlib

    core.reminder("r1")
    url = s3_server.url()

    result = maintctl(
        "backup", "--db", core.path, "--now", NOW, "--to", url, "--to", f"file://{tmp_path}/offsite",
        "--to", tmp_path / "local", "--json", env=env,
    )  # fmt: skip

    assert result.code == 0, result
    assert result.action("backup")["counts"] == {"written": 3, "deleted": 0}
    name = copy_name(core, "20261122T093000Z")
    store = Store(url)
    assert sorted(store.names()) == [name, name + ".json"]
    assert sorted(os.listdir(tmp_path / "offsite")) == [name, name + ".json"]
    stored = store.get(name)
    assert stored.startswith(b"age-encryption.org/v1") and b"remember this" not in stored
    assert stored == (tmp_path / "offsite" / name).read_bytes()  # one encryption for every URL destination
    plain = decrypted(stored, keys["identity"], tmp_path)
    copy = Core(plain)
    assert copy.sql("PRAGMA integrity_check") == [("ok",)]
    assert copy.sql("SELECT id FROM reminders") == [("r1",)]
    copy.connection.close()
    manifest = json.loads(store.get(name + ".json"))
    (database_id,) = core.sql("SELECT value FROM maintctl_meta WHERE key = 'database_id'")[0]
    assert manifest == {
        "database_id": database_id,
        "created_at": NOW,
        "size": len(stored),
        "sha256": hashlib.sha256(stored).hexdigest(),
        "plain_sha256": hashlib.sha256(plain.read_bytes()).hexdigest(),
        "integrity_check": "ok",
        "encrypted": True,
        "maintctl": manifest["maintctl"],
    }
    local = copy_name(core, "20261122T093000Z", ".sqlite3")
    assert (tmp_path / "local" / local).read_bytes() == plain.read_bytes()  # the plain directory's copy, unencrypted
    assert json.loads((tmp_path / "local" / (local + ".json")).read_text())["encrypted"] is False
    assert not [name for name in os.listdir(core.path.parent) if ".backup-" in name]  # no scratch file left


def test_a_url_destination_without_recipients_is_refused_and_the_other_actions_run(maintctl, core, s3_server):
    url = s3_server.url()
    core.reminder("r1")

    refused = maintctl("run-all", "--db", core.path, "--now", NOW, "--to", url, "--json", env=s3_server.env)
    plaintext = maintctl(
        "backup",
        "--db",
        core.path,
        "--now",
        NOW,
        "--to",
        url,
        env={**s3_server.env, "MAINTCTL_BACKUP_PLAINTEXT": "yes"},
    )

    assert refused.code == 2, refused
    backup = refused.action("backup")
    assert backup["status"] == "failed"
    assert (
        backup["error"].startswith(url.split("?")[0])
        and "MAINTCTL_BACKUP_RECIPIENTS names no age recipient" in (backup["error"])
    )
    assert refused.action("fire-reminders")["counts"]["fired"] == 1
    assert plaintext.code == 0, plaintext
    name = copy_name(core, "20261122T093000Z", ".sqlite3")
    assert sorted(Store(url).names()) == [name, name + ".json"]  # refused: nothing written; on purpose: plain
    assert Store(url).get(name).startswith(b"SQLite format 3\x00")


def test_bad_credentials_fail_that_destination_and_the_other_is_written_and_no_secret_is_said(
    maintctl, core, s3_server, env, tmp_path
):
    url = s3_server.url()
    wrong = {**env, "AWS_SECRET_ACCESS_KEY": "wrong-" + SECRET_KEY}
    outputs = []
    for form in ((), ("--json",), ("--dry-run",), ("--dry-run", "--json"), ("--verbose",)):
        result = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--to", tmp_path / "local", *form,
                          env=wrong)  # fmt: skip
        outputs.append(result)
        assert result.code == 1, result
    good = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--json", "--verbose", env=env)

    text, as_json = outputs[0], outputs[1].action("backup")
    assert as_json["counts"] == {"written": 1, "deleted": 0}
    assert as_json["error"] == f"{url}: could not be listed (403 Forbidden, SignatureDoesNotMatch)"
    assert text.err == f"maintctl: error: backup failed: {as_json['error']}\n"
    assert len(os.listdir(tmp_path / "local")) == 3 * 2 + 1  # each run's copy and manifest (the dry runs none), lock
    assert good.code == 0, good
    for result in [*outputs, good]:
        for secret in (SECRET_KEY, "wrong-" + SECRET_KEY):
            assert secret not in result.out and secret not in result.err


def test_a_name_already_taken_is_never_overwritten(maintctl, core, s3_server, env):
    url = s3_server.url()
    maintctl("backup", "--db", core.path, "--now", "2026-11-21T09:30:00Z", "--to", url, env=env)
    taken = copy_name(core, "20261122T093000Z")
    Store(url).put(taken, b"another writer's object")

    result = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--json", env=env)

    assert result.code == 0, result
    assert Store(url).get(taken) == b"another writer's object"
    names = Store(url).names()
    assert copy_name(core, "20261122T093000Z-2") in names and copy_name(core, "20261122T093000Z-2") + ".json" in names


def test_a_dry_run_says_what_it_would_write_remove_and_delete_and_changes_nothing(maintctl, core, s3_server, env):
    url = s3_server.url()
    for day in (19, 20):
        maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T09:30:00Z", "--to", url, env=env)
    store = Store(url)
    leftover = copy_name(core, "20261121T093000Z")  # a copy whose manifest never came
    store.put(leftover, b"half")
    before = store.names()

    dry = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--keep", "2", "--dry-run", env=env)

    assert dry.code == 0, dry
    assert store.names() == before
    assert f"remove the leftover {leftover} at {url} (4 bytes)" in dry.out
    assert f"write {copy_name(core, '20261122T093000Z')} at {url}" in dry.out
    assert f"delete {copy_name(core, '20261119T093000Z')} at {url}" in dry.out
    wet = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--keep", "2", "--json", env=env)
    assert wet.action("backup")["counts"] == {"written": 1, "deleted": 1}
    assert sorted(store.names()) == sorted(
        name + suffix for stamp in ("20261120T093000Z", "20261122T093000Z")
        for name in [copy_name(core, stamp)] for suffix in ("", ".json")
    )  # fmt: skip


def test_retention_by_days_weeks_and_months_among_this_databases_copies_only(maintctl, core, s3_server, env, tmp_path):
    from datetime import UTC, datetime, timedelta

    url = s3_server.url()
    (tmp_path / "other").mkdir()
    other = new_core(tmp_path / "other" / "core.db")  # another database of the same name, in the same bucket
    maintctl("backup", "--db", other.path, "--now", "2026-01-01T03:00:00Z", "--to", url, env=env)
    store = Store(url)
    others = set(store.names())
    maintctl("backup", "--db", core.path, "--now", "2026-08-31T03:00:00Z", "--to", url, env=env)
    first = copy_name(core, "20260831T030000Z")
    day = datetime(2026, 9, 1, 3, tzinfo=UTC)
    while day < datetime(2026, 11, 22, 3, tzinfo=UTC):  # a copy a day since, as daily passes left them
        name = copy_name(core, day.strftime("%Y%m%dT%H%M%SZ"))
        store.put(name, store.get(first))
        store.put(name + ".json", store.get(first + ".json"))
        day += timedelta(days=1)

    result = maintctl(
        "backup", "--db", core.path, "--now", "2026-11-22T03:00:00Z", "--to", url,
        "--keep-daily", "3", "--keep-weekly", "2", "--keep-monthly", "3", "--json", env=env,
    )  # fmt: skip

    assert result.code == 0, result
    kept = sorted(name for name in store.names() if name not in others and not name.endswith(".json"))
    # Sun 22, Sat 21, Fri 20 Nov (days); week 47 ends Sun 22, week 46 Sun 15 (weeks); Nov, Oct 31, Sep 30 (months).
    assert kept == [
        copy_name(core, f"2026{stamp}T030000Z") for stamp in ("0930", "1031", "1115", "1120", "1121", "1122")
    ]
    assert result.action("backup")["counts"] == {"written": 1, "deleted": 83 - 6 + 1}
    assert others <= set(store.names())
    assert {name + ".json" for name in kept} <= set(store.names())

    newest = maintctl("backup", "--db", core.path, "--now", "2026-11-23T03:00:00Z", "--to", url, "--keep", "2", env=env)

    assert newest.code == 0, newest
    kept = sorted(name for name in store.names() if name not in others and not name.endswith(".json"))
    assert kept == [copy_name(core, "20261122T030000Z"), copy_name(core, "20261123T030000Z")]
    assert others <= set(store.names())
    other.connection.close()


def test_prune_off_deletes_nothing(maintctl, core, s3_server, env):
    url = s3_server.url()
    for day in (20, 21, 22):
        result = maintctl("backup", "--db", core.path, "--now", f"2026-11-{day}T03:00:00Z", "--to", url, "--keep", "1",
                          "--json", env={**env, "MAINTCTL_BACKUP_PRUNE": "off"})  # fmt: skip
        assert result.action("backup")["counts"] == {"written": 1, "deleted": 0}
    assert len([name for name in Store(url).names() if not name.endswith(".json")]) == 3


@pytest.mark.slow
def test_a_killed_upload_leaves_no_finished_looking_copy_and_the_next_pass_removes_what_it_left(
    maintctl, core, s3_server, env, tmp_path
):
    core.user(1001)
    core.insert_many(
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, ?, 'confirmed')",
        ((f"m{index}", os.urandom(200).hex()) for index in range(100_000)),
    )  # about 45 MB
    url = s3_server.url()
    store = Store(url)
    run = subprocess.Popen(
        [sys.executable, "-m", "maintctl", "backup", "--db", str(core.path), "--now", NOW, "--to", url],
        env={**CLEAN_ENV, **env}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip

    def partial_object_there() -> bool:  # uploaded whole under its hidden name, not yet copied into place
        assert run.poll() is None, "the backup ended before its partial object was seen"
        return any(".partial-" in name for name in store.names())

    until(partial_object_there, "the partial object")
    os.kill(run.pid, signal.SIGKILL)
    run.communicate()

    listed = store.names()
    assert [name for name in listed if name + ".json" in listed] == []  # nothing looks like a finished copy
    assert [name for name in listed if ".partial-" in name]
    assert [name for name in os.listdir(core.path.parent) if ".backup-" in name]  # its scratch files

    same_hour = maintctl("backup", "--db", core.path, "--now", NOW, "--to", url, "--json", env=env)

    assert same_hour.code == 0, same_hour
    assert [name for name in os.listdir(core.path.parent) if ".backup-" in name] == []
    assert set(listed) <= set(store.names())  # within the hour: another run's upload under way, for all it knows

    next_day = maintctl("backup", "--db", core.path, "--now", "2026-11-23T09:30:00Z", "--to", url, "--json", env=env)

    assert next_day.code == 0, next_day
    assert sorted(store.names()) == sorted(
        name + suffix
        for name in (copy_name(core, "20261122T093000Z-2"), copy_name(core, "20261123T093000Z"))
        for suffix in ("", ".json")
    )
