"""Backup destinations against real stores: a directory through file://, and
a real S3-compatible server (SeaweedFS) that checks signatures and
conditional writes. Writes are create-only and whole-or-nothing; errors are a
line naming the destination, never a secret."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from s3_store import SECRET_KEY

from maintctl.backups.destinations import BadDestination, Bucket, DestinationError, Exists, Folder, parse


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


def a_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def read_all(destination, name: str) -> bytes:
    return b"".join(destination.chunks(name))


def test_destinations_as_written():
    assert parse("backups") == Folder(Path("backups"), plain=True)
    assert parse("file:///srv/copies") == Folder(Path("/srv/copies"), plain=False)
    bucket = parse("s3://core-backups/nightly/db?endpoint=http://127.0.0.1:8333&region=eu-west-1&path_style=true")
    assert isinstance(bucket, Bucket)
    assert (bucket.bucket, bucket.prefix) == ("core-backups", "nightly/db")
    assert bucket.options == {"endpoint": "http://127.0.0.1:8333", "region": "eu-west-1", "path_style": "true"}


@pytest.mark.parametrize(
    "written, said",
    [
        ("s3://AKIA:hunter2secret@bucket/p", "has credentials in it (not shown)"),
        ("s3://bucket/p?secret_access_key=hunter2secret", "secret_access_key, which maintctl does not take"),
        ("s3://ab/p", "does not name a bucket"),
        ("s3://bucket/p?endpoint=ftp://host", "must be http(s)://HOST[:PORT]"),
        ("file://relative/path", "must be file:///ABSOLUTE/PATH"),
        ("gs://bucket/p", "is not a directory, file:// or s3:// URL"),
    ],
)
def test_a_destination_that_cannot_be_used_is_named_without_its_secrets(written, said):
    with pytest.raises(BadDestination) as refused:
        parse(written)
    assert said in str(refused.value)
    assert "hunter2" not in str(refused.value) and "AKIA" not in str(refused.value)


def test_a_file_url_writes_whole_copies_and_never_over_another(tmp_path):
    destination = parse(f"file://{tmp_path}/copies")
    first, second = a_file(tmp_path / "one", 9 * 1024 * 1024), a_file(tmp_path / "two", 1000)
    moved: list[int] = []
    destination.put("core.db-1.sqlite3", first, moved.append)
    with pytest.raises(Exists, match="core.db-1.sqlite3 is already there"):
        destination.put("core.db-1.sqlite3", second)
    with pytest.raises(Exists):
        destination.put_bytes("core.db-1.sqlite3", b"{}")

    assert read_all(destination, "core.db-1.sqlite3") == first.read_bytes()
    assert sum(moved) == first.stat().st_size
    assert sorted(os.listdir(tmp_path / "copies")) == ["core.db-1.sqlite3"]  # no partial file left
    assert destination.sizes("core.db-") == {"core.db-1.sqlite3": 9 * 1024 * 1024}
    destination.delete("core.db-1.sqlite3")
    assert destination.sizes("core.db-") == {}


def test_an_s3_copy_is_written_in_parts_and_never_over_another(s3_env, tmp_path):
    destination = parse(s3_env.url())
    large = a_file(tmp_path / "large", 20 * 1024 * 1024 + 17)  # three parts
    destination.put("core.db-1.sqlite3", large)
    destination.put_bytes("core.db-1.sqlite3.json", b'{"size": 1}')
    with pytest.raises(Exists):
        destination.put("core.db-1.sqlite3", a_file(tmp_path / "other", 10))
    with pytest.raises(Exists):
        destination.put_bytes("core.db-1.sqlite3.json", b"{}")

    stored = read_all(destination, "core.db-1.sqlite3")
    assert hashlib.sha256(stored).digest() == hashlib.sha256(large.read_bytes()).digest()
    assert destination.sizes("core.db-") == {"core.db-1.sqlite3": large.stat().st_size, "core.db-1.sqlite3.json": 11}
    assert destination.sizes(".") == {}  # the partial uploads are gone
    destination.delete("core.db-1.sqlite3")
    assert list(destination.sizes("core.db-")) == ["core.db-1.sqlite3.json"]


def test_an_empty_file_is_a_copy_too(s3_env, tmp_path):
    destination = parse(s3_env.url())
    destination.put("empty", a_file(tmp_path / "empty", 0))
    assert destination.sizes("") == {"empty": 0}


def test_a_prefix_keeps_other_objects_in_the_bucket_out(s3_env, tmp_path):
    bucket = "shared-bucket-" + tmp_path.name[-8:].lower().replace("_", "-")
    ours, theirs = parse(s3_env.url(bucket, "ours")), parse(s3_env.url(bucket, "ours/deeper"))
    theirs.put_bytes("core.db-x", b"theirs")
    ours.put_bytes("core.db-y", b"ours")
    assert ours.sizes("core.db-") == {"core.db-y": 4}


def test_wrong_credentials_fail_naming_the_destination_and_no_secret(s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyzzy")
    url = s3_env.url()
    destination = parse(url)
    with pytest.raises(DestinationError) as failed:
        destination.put("core.db-1.sqlite3", a_file(tmp_path / "one", 100))
    said = str(failed.value)
    assert said.startswith(url.split("?")[0]) and "403 Forbidden" in said and "\n" not in said
    assert "xyzzy" not in said and SECRET_KEY not in said


def test_a_store_that_does_not_answer_fails_in_seconds_naming_the_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    destination = parse("s3://nobody-home/p?endpoint=http://127.0.0.1:9&region=us-east-1&path_style=true")
    with pytest.raises(DestinationError, match=r"^s3://nobody-home/p\?.*could not be listed"):
        destination.sizes("core.db-")
