import os
import subprocess
import sys

import pytest
from conftest import CLEAN_ENV, NOW


@pytest.fixture
def media_dir(core):
    directory = core.path.parent / "media"
    directory.mkdir()
    return directory


def expire(maintctl, core, *extra, **kwargs):
    return maintctl("expire-pending", "--db", core.path, "--now", NOW, "--json", *extra, **kwargs)


def memory_ids(core):
    return {memory_id for (memory_id,) in core.sql("SELECT id FROM memories")}


def test_selection_boundaries(maintctl, core):
    core.memory("before", status="pending", expires="2026-11-22T09:29:59.999Z")
    core.memory("exactly", status="pending", expires=NOW)
    core.memory("after", status="pending", expires="2026-11-22T09:30:00.001Z")
    core.memory("confirmed", status="confirmed", expires="2026-11-01T00:00:00.000Z")

    result = expire(maintctl, core)

    assert result.code == 0, result
    assert memory_ids(core) == {"after", "confirmed"}
    assert result.action("expire-pending")["counts"] == {"expired": 2, "files_deleted": 0}
    assert core.audit() == [
        ("memory", "before", "expired", "system:scheduler", None, NOW),
        ("memory", "exactly", "expired", "system:scheduler", None, NOW),
    ]


def test_the_memory_leaves_the_search_index_and_takes_its_tags_and_reminders(maintctl, core):
    core.memory("gone", status="pending", expires="2026-11-22T09:00:00.000Z", content="old upload")
    core.memory("kept", status="confirmed", content="keep me")
    core.tag("gone", "receipts")
    core.reminder("r-gone", memory_id="gone", fire_at="2026-12-01T00:00:00.000Z")
    core.reminder("r-kept", memory_id="kept", fire_at="2026-12-01T00:00:00.000Z")

    expire(maintctl, core)

    assert core.sql("SELECT memory_id FROM memories_fts") == [("kept",)]
    assert core.sql("SELECT memory_id FROM memories_fts WHERE memories_fts MATCH 'upload'") == []
    assert core.sql("SELECT memory_id FROM memory_tags") == []
    assert core.sql("SELECT id FROM reminders") == [("r-kept",)]


SEARCH_SHAPES = {
    "indexed by init-db": [],
    "before init-db indexed it": ["DROP INDEX maintctl_memories_fts_memory"],
    "its columns in another order": [
        "DROP TABLE memories_fts",
        "CREATE VIRTUAL TABLE memories_fts USING fts5 (content, memory_id UNINDEXED)",
    ],
}


@pytest.mark.parametrize("shape", SEARCH_SHAPES)
def test_each_batch_removes_its_memories_from_the_search_index_whatever_its_shape(maintctl, core, shape):
    for statement in SEARCH_SHAPES[shape]:
        core.sql(statement)
    for index in range(25):
        status = "pending" if index % 5 else "confirmed"
        core.memory(f"m{index}", status=status, expires="2026-11-22T09:00:00.000Z", content=f"note {index} milk")

    result = expire(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "7"})

    assert result.action("expire-pending")["counts"]["expired"] == 20
    kept = [(f"m{index}",) for index in range(0, 25, 5)]
    assert core.sql("SELECT memory_id FROM memories_fts ORDER BY rowid") == kept
    assert core.sql("SELECT memory_id FROM memories_fts WHERE memories_fts MATCH 'milk' ORDER BY rowid") == kept
    assert core.sql("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')") == []


def test_init_db_indexes_the_search_index_only_where_it_has_the_usual_shape(maintctl, core, redis_url):
    (core.path.parent / "media").mkdir()
    core.sql("DROP INDEX maintctl_memories_fts_memory")

    missing = maintctl("doctor", "--db", core.path, "--redis-url", redis_url)
    made = maintctl("init-db", "--db", core.path, "--json")
    for statement in SEARCH_SHAPES["its columns in another order"]:
        core.sql(statement)
    other_shape = maintctl("init-db", "--db", core.path, "--json")
    checked = maintctl("doctor", "--db", core.path, "--redis-url", redis_url)

    assert "FAIL" in missing.out and "missing maintctl_memories_fts_memory: run maintctl init-db" in missing.out
    assert made.json()["created"] == ["maintctl_memories_fts_memory"]
    assert other_shape.code == 0 and other_shape.json()["created"] == []
    assert checked.code == 0, checked


def test_expiry_in_another_form_is_compared_by_instant(maintctl, core):
    core.memory("offset", status="pending", expires="2026-11-22T11:00:00+01:30")  # = 09:30Z
    core.memory("later", status="pending", expires="2026-11-22 09:31:00")

    expire(maintctl, core)

    assert memory_ids(core) == {"later"}


def test_unreadable_expiry_is_reported_and_skipped(maintctl, core):
    core.memory("bad", status="pending", expires="someday")
    core.memory("due", status="pending", expires="2026-11-22T09:00:00.000Z")

    result = expire(maintctl, core)

    assert result.code == 0
    assert memory_ids(core) == {"bad"}
    assert result.action("expire-pending")["warnings"] == [
        "memory bad: pending_expires_at 'someday' names no instant; not expired"
    ]


class TestMedia:
    def test_a_file_inside_the_media_directory_is_deleted(self, maintctl, core, media_dir):
        (media_dir / "uploads").mkdir()
        upload = media_dir / "uploads" / "a.jpg"
        upload.write_bytes(b"jpeg")
        neighbour = media_dir / "uploads" / "b.jpg"
        neighbour.write_bytes(b"jpeg")
        core.memory("m1", status="pending", expires="2026-11-22T09:00:00.000Z", media="uploads/a.jpg")

        result = expire(maintctl, core)

        assert not upload.exists()
        assert neighbour.exists()
        assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 1}
        assert core.sql("SELECT count(*) FROM maintctl_media_deletions") == [(0,)]

    def test_an_absolute_path_inside_the_media_directory_is_deleted(self, maintctl, core, media_dir):
        upload = media_dir / "a.jpg"
        upload.write_bytes(b"jpeg")
        core.memory("m1", status="pending", expires=NOW, media=str(upload))

        expire(maintctl, core)

        assert not upload.exists()

    def test_the_media_directory_can_be_named(self, maintctl, core, tmp_path):
        elsewhere = tmp_path / "uploads"
        elsewhere.mkdir()
        (elsewhere / "a.jpg").write_bytes(b"jpeg")
        core.memory("m1", status="pending", expires=NOW, media="a.jpg")

        expire(maintctl, core, env={"MAINTCTL_MEDIA_DIR": str(elsewhere)})

        assert not (elsewhere / "a.jpg").exists()

    @pytest.mark.parametrize("kind", ["absolute", "dotdot", "link_out", "link_dir_out"])
    def test_a_path_leading_outside_is_left_alone_and_reported_but_the_memory_expires(
        self, maintctl, core, media_dir, tmp_path, kind
    ):
        outside = tmp_path / "precious"
        outside.mkdir()
        target = outside / "keep.txt"
        target.write_text("do not delete")
        stored = {
            "absolute": str(target),
            "dotdot": "../precious/keep.txt",
            "link_out": "link.txt",
            "link_dir_out": "linked/keep.txt",
        }[kind]
        (media_dir / "link.txt").symlink_to(target)
        (media_dir / "linked").symlink_to(outside)
        core.memory("m1", status="pending", expires=NOW, media=stored)

        result = expire(maintctl, core)

        assert result.code == 0
        assert target.read_text() == "do not delete"
        assert (media_dir / "link.txt").is_symlink()
        assert memory_ids(core) == set()
        action = result.action("expire-pending")
        assert action["counts"] == {"expired": 1, "files_deleted": 0}
        assert action["warnings"] == [
            f"memory m1: media file {stored!r} is outside the media directory {media_dir}; left alone"
        ]

    def test_a_file_already_gone_is_no_problem(self, maintctl, core, media_dir):
        core.memory("m1", status="pending", expires=NOW, media="never-written.jpg")

        result = expire(maintctl, core)

        assert result.code == 0
        assert result.action("expire-pending")["warnings"] == []
        assert memory_ids(core) == set()

    def test_the_media_directory_itself_is_never_deleted(self, maintctl, core, media_dir):
        core.memory("m1", status="pending", expires=NOW, media=".")

        result = expire(maintctl, core)

        assert media_dir.is_dir()
        assert "left alone" in result.action("expire-pending")["warnings"][0]

    def test_a_deletion_left_queued_by_a_killed_run_is_finished_by_the_next(self, maintctl, core, media_dir):
        leftover = media_dir / "leftover.jpg"
        leftover.write_bytes(b"jpeg")
        core.sql(
            "INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES ('gone', ?, ?)",
            str(leftover.resolve()),
            NOW,
        )

        result = expire(maintctl, core)

        assert not leftover.exists()
        assert result.action("expire-pending")["counts"]["files_deleted"] == 1

    @pytest.mark.parametrize("where", ["a directory on the way", "the media directory", "a link to the file"])
    def test_names_that_are_not_utf8_on_the_way_stop_nothing(self, maintctl, core, tmp_path, where):
        media = os.fsencode(tmp_path) + (b"/\xffmedia" if where == "the media directory" else b"/media")
        os.makedirs(media + b"/\xffdir")
        os.symlink(b"\xffdir", media + b"/d")
        os.symlink(b"x.jpg", media + b"/\xff.jpg")
        for name in (b"x.jpg", b"y.jpg", b"\xffdir/z.jpg"):
            with open(media + b"/" + name, "wb") as photo:
                photo.write(b"jpeg")
        first = b"d/z.jpg" if where == "a directory on the way" else b"x.jpg"
        core.memory("m1", status="pending", expires=NOW, media=first.decode())
        core.memory("m2", status="pending", expires=NOW, media="y.jpg")
        media_option = ("--media-dir", os.fsdecode(media))

        dry = expire(maintctl, core, "--dry-run", *media_option)
        result = expire(maintctl, core, *media_option)
        after = expire(maintctl, core, *media_option)

        assert (dry.code, result.code, after.code) == (0, 0, 0), result
        assert result.action("expire-pending")["counts"] == {"expired": 2, "files_deleted": 2}
        assert result.action("expire-pending")["warnings"] == []
        assert not os.path.lexists(media + b"/" + first) and not os.path.lexists(media + b"/y.jpg")
        assert os.path.islink(media + b"/\xff.jpg")
        assert core.sql("SELECT count(*) FROM maintctl_media_deletions") == [(0,)]

    def test_a_deletion_queued_as_bytes_that_are_not_utf8_is_done(self, maintctl, core, media_dir):
        os.mkdir(os.fsencode(media_dir) + b"/\xffdir")
        queued = os.fsencode(media_dir.resolve()) + b"/\xffdir/x.jpg"
        with open(queued, "wb") as photo:
            photo.write(b"jpeg")
        core.sql("INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES ('gone', ?, ?)", queued, NOW)

        result = expire(maintctl, core)

        assert result.code == 0, result
        assert not os.path.lexists(queued)
        assert result.action("expire-pending")["counts"]["files_deleted"] == 1

    def test_a_directory_it_cannot_read_fails_the_deletion_by_name_and_the_files_stay_queued(
        self, maintctl, core, media_dir, tmp_path
    ):
        photo = media_dir / "x.jpg"
        photo.write_bytes(b"jpeg")
        private = os.fsencode(media_dir) + b"/\xffprivate"
        os.mkdir(private, mode=0o000)
        core.memory("m1", status="pending", expires=NOW, media="x.jpg")
        unprivileged = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", 'exec "$@"', "-"]
        if subprocess.run([*unprivileged, "true"], check=False).returncode:
            pytest.skip("capsh cannot drop the capabilities that pass over permission bits here")
        command = [*unprivileged, sys.executable, "-m", "maintctl", "expire-pending", "--db", str(core.path)]

        failed = subprocess.run(
            [*command, "--now", NOW], capture_output=True, text=True, cwd=tmp_path, env=CLEAN_ENV, check=False
        )

        assert failed.returncode == 1, failed
        assert failed.stderr == (
            f"maintctl: error: expire-pending failed: {media_dir}/\\xffprivate: cannot be read (Permission denied);"
            " no media file is deleted while the links in it are unknown: they stay queued\n"
        )
        assert photo.exists() and memory_ids(core) == set()
        assert core.sql("SELECT memory_id FROM maintctl_media_deletions") == [("m1",)]
        assert core.sql("SELECT action, status FROM maintctl_runs") == [("expire-pending", "failed")]
        assert "expired 1, files deleted 0" in failed.stdout

    def test_a_queued_deletion_whose_directory_became_a_link_leaves_the_file_alone(
        self, maintctl, core, media_dir, tmp_path
    ):
        (media_dir / "sub").mkdir()
        queued = (media_dir / "sub" / "x.jpg").resolve()
        core.sql(
            "INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES ('m1', ?, ?)", str(queued), NOW
        )
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "x.jpg").write_text("keep")
        (media_dir / "sub").rmdir()
        (media_dir / "sub").symlink_to(outside)  # swapped after the file was checked and queued

        result = expire(maintctl, core)

        assert (outside / "x.jpg").read_text() == "keep"
        assert "its directory changed" in result.action("expire-pending")["warnings"][0]

    def test_dry_run_touches_no_file_and_no_byte(self, maintctl, core, media_dir):
        upload = media_dir / "a.jpg"
        upload.write_bytes(b"jpeg")
        core.memory("m1", status="pending", expires=NOW, media="a.jpg")
        before = core.digest()

        result = expire(maintctl, core, "--dry-run")

        assert result.code == 0
        assert upload.exists()
        assert core.digest() == before
        action = result.action("expire-pending")
        assert action["counts"] == {"expired": 1, "files_deleted": 1}
        assert action["planned"] == [
            {"id": "m1", "pending_expires_at": NOW, "media_local_path": "a.jpg", "delete_file": str(upload.resolve())}
        ]


def test_a_second_run_changes_nothing(maintctl, core):
    core.memory("m1", status="pending", expires=NOW)
    expire(maintctl, core)
    before = core.data_digest()

    result = expire(maintctl, core)

    assert result.action("expire-pending")["counts"] == {"expired": 0, "files_deleted": 0}
    assert core.data_digest() == before


def test_missing_search_index_fails_the_action_by_name_and_changes_nothing(maintctl, core):
    core.memory("m1", status="pending", expires=NOW)
    core.sql("DROP TABLE memories_fts")

    result = expire(maintctl, core)

    assert result.code == 1
    action = result.action("expire-pending")
    assert action["status"] == "failed"
    assert action["error"] == "table memories_fts is missing"
    assert memory_ids(core) == {"m1"}
    assert core.audit() == []
