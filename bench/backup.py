"""An encrypted off-site backup of a large database to an S3-compatible store (SeaweedFS's `weed mini`, as
the tests start it) against the floor: SQLite's backup API copy of the same database and an upload of the
file with the same client (obstore, 8 MiB parts), nothing else (no check, no encryption, no digest, no
manifest, no create-only copy into place). Then the restore from the store onto a new host (no database at
the path) against its floor: the download of a plain copy with the same client and its rename into place
(no manifest, no decryption, no digest, no integrity_check).

    python bench/backup.py                  # 1 GiB, three runs each; --size-mib 256 for a smaller one
    python bench/backup.py --keep           # and leave the store running, printing both commands

Each run is a whole process, start-up included; the peak is the process's own VmHWM (run.measure)."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import ENV, measure

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))


def floor(database: Path, url: str) -> None:
    """The floor: copy the database with the backup API beside it, upload the file, remove the copy."""
    import obstore

    store, prefix = _store(url)
    copy = database.with_name(f".{database.name}.floor")
    source, target = sqlite3.connect(database), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    try:
        with open(copy, "rb") as reading:
            chunks = iter(lambda: reading.read(8 << 20), b"")
            obstore.put(store, f"{prefix}/floor-{time.time_ns()}", chunks, chunk_size=8 << 20)
    finally:
        copy.unlink()


def _store(url: str):
    from urllib.parse import parse_qsl, urlsplit

    from obstore.store import S3Store

    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    store = S3Store(
        parts.hostname, endpoint=options["endpoint"], region=options["region"], virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )  # fmt: skip
    return store, parts.path.strip("/")


def restore_floor(url: str, key: str, target: Path) -> None:
    """The restore's floor: download the plain copy at key, a part at a time, then rename it into place."""
    import obstore

    store, _ = _store(url)
    partial = target.with_name(f".{target.name}.partial")
    with open(partial, "wb") as writing:
        writing.writelines(obstore.get(store, key).stream(min_chunk_size=8 << 20))
        writing.flush()
        os.fsync(writing.fileno())
    os.replace(partial, target)


def timed_pairs(pairs, runs: int, work: Path, after=None) -> tuple[dict, dict]:
    """Time each (name, command) pair alternately, runs times; `after` runs (untimed) after each command."""
    times, peaks = {name: [] for name, _ in pairs}, {name: [] for name, _ in pairs}
    for _ in range(runs):
        for name, command in pairs:
            os.sync()
            elapsed, peak = measure(command, work)
            times[name].append(elapsed)
            peaks[name].append(peak)
            if after:
                after()
    return times, peaks


def row(what: str, size: float, times: dict, peaks: dict) -> str:
    ours, theirs = statistics.median(times["maintctl"]), statistics.median(times["floor"])
    return (
        f"| {what} | {size:,.0f} MiB | {ours:.2f} s | {theirs:.2f} s (floor) | {ours / theirs:.2f}× |"
        f" ≤ 1.5× floor, ≤ 100 MiB | {max(peaks['maintctl']):.0f} MiB (floor {max(peaks['floor']):.0f} MiB) |"
    )


def build(path: Path, size_mib: int) -> None:
    """A database of the app's schema holding about size_mib MiB of memories (random text, as stored)."""
    subprocess.run([sys.executable, "-m", "maintctl", "init-db", "--db", str(path), "--quiet"], check=True, env=ENV)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("INSERT INTO users (telegram_user_id) VALUES (1001)")
    rows = size_mib * 1024 // 2  # about 2 KiB a row
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO memories (id, owner_user_id, content, status) VALUES (?, 1001, ?, 'confirmed')",
        ((f"m{index}", os.urandom(900).hex()) for index in range(rows)),
    )
    connection.execute("COMMIT")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the store and files, print the commands")
    arguments = parser.parse_args()
    from s3_store import SeaweedFS

    work = Path(tempfile.mkdtemp(prefix="maintctl-bench-backup-"))
    store = SeaweedFS(work / "weed").start()
    try:
        database = work / "core.db"
        build(database, arguments.size_mib)
        identity = work / "identity.txt"
        subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
        public = next(line.split(": ")[1] for line in identity.read_text().splitlines() if "public key:" in line)
        url = store.url("benchcopies")
        env = {**ENV, **store.env, "MAINTCTL_BACKUP_RECIPIENTS": public}
        ours = [sys.executable, "-m", "maintctl", "backup", "--db", str(database), "--to", url, "--keep", "1",
                "--quiet"]  # fmt: skip
        theirs = [sys.executable, str(Path(__file__).resolve()), "floor", str(database), url]
        ENV.update(env)
        if arguments.keep:
            print(
                "env:",
                " ".join(f"{key}={value}" for key, value in store.env.items()),
                f"MAINTCTL_BACKUP_RECIPIENTS={public}",
            )
            print("maintctl:", " ".join(ours))
            print("floor:", " ".join(theirs))
            input("press Enter to stop the store")
            return
        size = database.stat().st_size / 2**20
        print(row("encrypted backup to SeaweedFS", size, *timed_pairs([("maintctl", ours), ("floor", theirs)],
                  arguments.runs, work)))  # fmt: skip

        import obstore

        os.environ.update(store.env)
        bucket, prefix = _store(url)
        obstore.put(bucket, f"{prefix}/floor-source", database, chunk_size=8 << 20, use_multipart=True)
        new_host = work / "new-host"
        new_host.mkdir()
        target = new_host / database.name
        ENV["MAINTCTL_BACKUP_IDENTITY"] = str(identity)
        ours = [sys.executable, "-m", "maintctl", "restore", url, "--db", str(target), "--quiet"]
        theirs = [sys.executable, str(Path(__file__).resolve()), "restore-floor", url, f"{prefix}/floor-source",
                  str(target)]  # fmt: skip
        print(row("restore from SeaweedFS, decrypted", size, *timed_pairs([("maintctl", ours), ("floor", theirs)],
                  arguments.runs, work, after=lambda: target.unlink())))  # fmt: skip
    finally:
        store.stop()
        if not arguments.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["floor"]:
        floor(Path(sys.argv[2]), sys.argv[3])
    elif sys.argv[1:2] == ["restore-floor"]:
        restore_floor(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        main()
