"""A database's copies at a destination: which are finished (a manifest
beside them), what is left over, and encryption that Debian's age reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from maintctl.backups import copies, encryption
from maintctl.backups.destinations import parse
from maintctl.config.values import ConfigError

AT = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def test_a_copy_is_finished_once_its_manifest_is_there(tmp_path):
    destination = parse(f"file://{tmp_path}/copies")
    begins = copies.prefix("core.db", "3f2a9c1e")
    source = tmp_path / "source"
    source.write_bytes(b"SQLite format 3\0" + bytes(100))
    finished, unfinished = copies.name(begins, AT, encrypted=True), copies.name(begins, AT, 2, encrypted=True)
    destination.put(finished, source)
    destination.put_bytes(finished + ".json", copies.manifest("3f2a9c1e-full", AT, source, "abc", True, "0.1.0"))
    destination.put(unfinished, source)  # killed before its manifest
    destination.put_bytes(copies.name(begins, AT, 3) + ".json", b"{}")  # a manifest whose copy is gone
    destination.put_bytes(copies.name("other.db-00000000-", AT), b"another database's")

    listing = copies.listing(destination, begins)
    assert [copy.name for copy in listing.copies] == ["core.db-3f2a9c1e-20261122T093000Z.sqlite3.age"]
    (copy,) = listing.copies
    assert (copy.encrypted, copy.size, copy.created_at) == (True, 116, AT)
    assert copy.manifest["sha256"] == copies.sha256(source) and copy.manifest["size"] == 116
    assert listing.leftovers == [
        "core.db-3f2a9c1e-20261122T093000Z-2.sqlite3.age",
        "core.db-3f2a9c1e-20261122T093000Z-3.sqlite3.json",
    ]


def test_a_plain_directory_counts_copies_from_before_manifests(tmp_path):
    destination = parse(str(tmp_path))
    (tmp_path / "core.db-3f2a9c1e-20261122T093000Z.sqlite3").write_bytes(b"x")
    listing = copies.listing(destination, copies.prefix("core.db", "3f2a9c1e"))
    assert [(copy.name, copy.manifest) for copy in listing.copies] == [
        ("core.db-3f2a9c1e-20261122T093000Z.sqlite3", None)
    ]
    assert listing.leftovers == []


@pytest.mark.skipif(shutil.which("age") is None, reason="Debian's age is installed by the README's test command")
def test_copies_are_encrypted_to_public_keys_that_age_reads(tmp_path):
    subprocess.run(["age-keygen", "-o", tmp_path / "key.txt"], check=True, capture_output=True)
    public = subprocess.run(["age-keygen", "-y", tmp_path / "key.txt"], check=True, capture_output=True, text=True)
    (tmp_path / "recipients").write_text(f"# the backup key\n{public.stdout}\n")
    plain = tmp_path / "plain.db"
    plain.write_bytes(bytes(range(256)) * 40000)

    encryption.encrypt(plain, tmp_path / "copy.age", encryption.recipients(str(tmp_path / "recipients")))
    read = subprocess.run(
        ["age", "-d", "-i", tmp_path / "key.txt", tmp_path / "copy.age"], check=True, capture_output=True
    )
    assert read.stdout == plain.read_bytes()
    encryption.decrypt(tmp_path / "copy.age", tmp_path / "back.db", encryption.identities(tmp_path / "key.txt"))
    assert (tmp_path / "back.db").read_bytes() == plain.read_bytes()
    assert oct((tmp_path / "copy.age").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "written, said",
    [
        ("age1notakey", "age1notakey is not an age recipient"),
        ("/nowhere/recipients.txt", "neither age recipients (age1…) nor a file of them: /nowhere/recipients.txt"),
    ],
)
def test_recipients_that_are_not_keys_are_named(written, said):
    with pytest.raises(ConfigError, match=r"^MAINTCTL_BACKUP_RECIPIENTS") as refused:
        encryption.recipients(written)
    assert said in str(refused.value)


def test_an_identity_file_is_never_repeated_in_an_error(tmp_path):
    (tmp_path / "key.txt").write_text("AGE-SECRET-KEY-1NOTAREALKEYATALL\n")
    with pytest.raises(ConfigError) as refused:
        encryption.identities(tmp_path / "key.txt")
    assert "line 1 is not an age identity" in str(refused.value) and "NOTAREAL" not in str(refused.value)


def test_manifest_is_the_contracts_document(tmp_path):
    stored = tmp_path / "s"
    stored.write_bytes(b"abc")
    assert json.loads(copies.manifest("id", AT, stored, "p", False, "1.2")) == {
        "database_id": "id",
        "created_at": "2026-11-22T09:30:00.000Z",
        "size": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "plain_sha256": "p",
        "integrity_check": "ok",
        "encrypted": False,
        "maintctl": "1.2",
    }


def test_a_copy_damaged_past_its_header_is_not_readable_rather_than_an_error_of_the_disk(tmp_path):
    from pyrage import x25519

    key = x25519.Identity.generate()
    plain = tmp_path / "plain.db"
    plain.write_bytes(bytes(range(256)) * 4000)
    encryption.encrypt(plain, tmp_path / "copy.age", [key.to_public()])
    damaged = bytearray((tmp_path / "copy.age").read_bytes())
    damaged[-1000] ^= 0x01  # in the last part of the payload, far from the header
    (tmp_path / "damaged.age").write_bytes(bytes(damaged))

    with pytest.raises(encryption.NotReadable, match="is damaged: a part of it fails its authentication"):
        encryption.decrypt(tmp_path / "damaged.age", tmp_path / "back.db", [key])
