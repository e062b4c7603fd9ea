"""expire-pending leaves a media file that a remaining memory still uses,
however that memory's path reaches it, and removes a link as a link."""

import os

import pytest
from conftest import NOW
from test_expire_pending import expire, media_dir, memory_ids  # noqa: F401 - media_dir is a fixture

PAST = "2026-11-22T09:00:00.000Z"


def assert_kept(result, file, users: str, gone: str = "gone") -> None:
    """Assert that `file` is still there, and that the run's one warning says
    it stayed for the expired memory `gone` because `users` use it."""
    assert file.read_bytes() == b"jpeg"
    named = str(file.parent.resolve() / file.name)  # a link is named as itself
    assert result.action("expire-pending")["warnings"] == [f"memory {gone}: media file {named!r} kept: {users}"]


def photo_in(directory, name="x.jpg"):
    photo = directory / name
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(b"jpeg")
    return photo


@pytest.mark.parametrize("index", ["made by init-db", "not made yet"])
def test_a_file_that_a_kept_memory_names_stays_and_the_memory_still_expires(maintctl, core, media_dir, index):
    if index == "not made yet":
        core.sql("DROP INDEX maintctl_memories_media_name")
    photo = photo_in(media_dir)
    core.memory("kept", status="confirmed", media="x.jpg")
    core.memory("gone", status="pending", expires=PAST, media="x.jpg")

    result = expire(maintctl, core)

    assert result.code == 0, result
    assert_kept(result, photo, "memory kept uses it")
    assert memory_ids(core) == {"kept"}
    assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 0}


@pytest.mark.parametrize("target_used", [True, False], ids=["target used", "target unused"])
def test_a_link_goes_as_a_link_and_what_it_leads_to_stays(maintctl, core, media_dir, target_used):
    photo = photo_in(media_dir)
    (media_dir / "alias.jpg").symlink_to("x.jpg")
    if target_used:
        core.memory("kept", status="confirmed", media="x.jpg")
    core.memory("gone", status="pending", expires=PAST, media="alias.jpg")

    result = expire(maintctl, core)

    assert not os.path.lexists(media_dir / "alias.jpg")
    assert photo.read_bytes() == b"jpeg"
    action = result.action("expire-pending")
    assert action["counts"] == {"expired": 1, "files_deleted": 1}
    assert action["warnings"] == []


SPELLINGS = {  # (the expiring memory's path, the kept memory's), for media/sub/x.jpg
    "./": ("sub/x.jpg", "./sub/x.jpg"),
    "..": ("sub/x.jpg", "other/../sub/x.jpg"),
    "absolute": ("sub/x.jpg", "{media}/sub/x.jpg"),
    "a linked directory": ("sub/x.jpg", "album/x.jpg"),
    "a link to the media directory": ("sub/x.jpg", "{outside}/media-link/sub/x.jpg"),
    "the expiring one through a linked directory": ("album/x.jpg", "sub/x.jpg"),
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_kept_memory_that_spells_the_path_another_way_keeps_the_file(maintctl, core, media_dir, tmp_path, spelling):
    photo = photo_in(media_dir / "sub")
    (media_dir / "other").mkdir()
    (media_dir / "album").symlink_to("sub")
    (tmp_path / "media-link").symlink_to(media_dir)
    gone_path, kept_path = (path.format(media=media_dir, outside=tmp_path) for path in SPELLINGS[spelling])
    core.memory("kept", status="confirmed", media=kept_path)
    core.memory("gone", status="pending", expires=PAST, media=gone_path)

    result = expire(maintctl, core)

    assert_kept(result, photo, "memory kept uses it")
    assert memory_ids(core) == {"kept"}


def test_a_file_that_a_kept_memory_reaches_through_its_own_link_stays(maintctl, core, media_dir):
    photo = photo_in(media_dir)
    (media_dir / "links").mkdir()
    link = media_dir / "links" / "alias.jpg"
    link.symlink_to("../x.jpg")
    core.memory("kept", status="confirmed", media="links/alias.jpg")
    core.memory("gone", status="pending", expires=PAST, media="x.jpg")

    result = expire(maintctl, core)

    assert link.read_bytes() == b"jpeg"
    through = repr(str(media_dir.resolve() / "links" / "alias.jpg"))
    assert_kept(result, photo, f"memory kept (through the link {through}) uses it")
    assert result.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 0}


def test_a_link_that_a_kept_memory_reaches_through_another_link_stays(maintctl, core, media_dir):
    photo_in(media_dir)
    (media_dir / "alias.jpg").symlink_to("x.jpg")
    (media_dir / "alias-of-alias.jpg").symlink_to("alias.jpg")
    core.memory("kept", status="confirmed", media="alias-of-alias.jpg")
    core.memory("gone", status="pending", expires=PAST, media="alias.jpg")

    result = expire(maintctl, core)

    assert (media_dir / "alias-of-alias.jpg").read_bytes() == b"jpeg"
    through = repr(str(media_dir.resolve() / "alias-of-alias.jpg"))
    assert_kept(result, media_dir / "alias.jpg", f"memory kept (through the link {through}) uses it")


STORED = {  # how the kept memory's path is stored (SQL), and the link it reaches the file through
    "a BLOB": ("CAST('é/x.jpg' AS BLOB)", None),
    "an absolute BLOB": ("CAST('{media}/é/x.jpg' AS BLOB)", None),
    "text that is not UTF-8": ("CAST(X'ff2e6a7067' AS TEXT)", b"\xff.jpg"),
    "a BLOB that is not UTF-8": ("X'ff2e6a7067'", b"\xff.jpg"),
}


@pytest.mark.parametrize("stored", STORED)
def test_a_kept_memory_whose_path_is_stored_as_bytes_keeps_the_file(maintctl, core, media_dir, stored):
    photo = photo_in(media_dir / "é")
    os.symlink("é/x.jpg", os.fsencode(media_dir) + b"/\xff.jpg")
    path_sql, link = STORED[stored]
    core.memory("kept", status="confirmed")
    core.sql(f"UPDATE memories SET media_local_path = {path_sql.format(media=media_dir)} WHERE id = 'kept'")
    core.memory("gone", status="pending", expires=PAST, media="é/x.jpg")

    dry = expire(maintctl, core, "--dry-run")
    result = expire(maintctl, core)

    through = f" (through the link {os.fsdecode(os.fsencode(media_dir.resolve()) + b'/' + link)!r})" if link else ""
    assert_kept(result, photo, f"memory kept{through} uses it")
    assert dry.action("expire-pending")["planned"][0]["delete_file"] is None
    assert dry.action("expire-pending")["warnings"] == result.action("expire-pending")["warnings"]
    assert memory_ids(core) == {"kept"}


def test_a_kept_memory_with_another_hard_link_to_the_file_loses_nothing(maintctl, core, media_dir):
    photo = photo_in(media_dir)
    other_name = media_dir / "y.jpg"
    os.link(photo, other_name)
    core.memory("kept", status="confirmed", media="y.jpg")
    core.memory("gone", status="pending", expires=PAST, media="x.jpg")

    result = expire(maintctl, core)

    assert not photo.exists()
    assert other_name.read_bytes() == b"jpeg"
    action = result.action("expire-pending")
    assert action["counts"] == {"expired": 1, "files_deleted": 1}
    assert action["warnings"] == []


def test_several_names_for_one_kept_file_are_all_named_up_to_three(maintctl, core, media_dir):
    photo = photo_in(media_dir)
    for index in range(5):
        core.memory(f"kept{index}", status="confirmed", media="x.jpg")
    core.memory("gone", status="pending", expires=PAST, media="x.jpg")

    result = expire(maintctl, core)

    assert_kept(result, photo, "memory kept0, memory kept1, memory kept2 and 2 more use it")


@pytest.mark.parametrize("batch_size", ["1", "10000"])
def test_expiring_memories_that_share_a_file_delete_it_once(maintctl, core, media_dir, batch_size):
    photo = photo_in(media_dir)
    for index, spelling in enumerate(["x.jpg", "./x.jpg", str(media_dir / "x.jpg")]):
        core.memory(f"gone{index}", status="pending", expires=PAST, media=spelling)

    result = expire(maintctl, core, env={"MAINTCTL_BATCH_SIZE": batch_size})

    assert not photo.exists()
    action = result.action("expire-pending")
    assert action["counts"] == {"expired": 3, "files_deleted": 1}
    assert action["warnings"] == []


def test_a_file_shared_with_a_memory_left_for_the_next_run_goes_with_the_last(maintctl, core, media_dir):
    photo = photo_in(media_dir)
    core.memory("first", status="pending", expires=PAST, media="x.jpg")
    core.memory("second", status="pending", expires=NOW, media="x.jpg")

    stopped = expire(maintctl, core, "--max-items", "1")
    assert_kept(stopped, photo, "memory second uses it", gone="first")
    finished = expire(maintctl, core)

    assert not photo.exists()
    assert finished.action("expire-pending")["counts"] == {"expired": 1, "files_deleted": 1}
    assert memory_ids(core) == set()


def test_a_memory_the_app_stores_before_the_deletion_keeps_the_file(maintctl, core, media_dir):
    """The app writes a memory that uses the file after the plan, before the deletion after commit."""
    photo = photo_in(media_dir)
    core.memory("gone", status="pending", expires=PAST, media="x.jpg")
    core.sql(
        "CREATE TRIGGER app_reuses_the_upload AFTER DELETE ON memories WHEN old.id = 'gone' BEGIN"
        " INSERT INTO memories (id, owner_user_id, content, status, media_local_path)"
        " VALUES ('new', 1001, 'same photo', 'confirmed', 'x.jpg'); END"
    )

    result = expire(maintctl, core)

    assert_kept(result, photo, "memory new uses it")
    assert memory_ids(core) == {"new"}


def test_a_deletion_left_queued_whose_file_a_memory_now_uses_leaves_it(maintctl, core, media_dir):
    photo = photo_in(media_dir)
    core.sql(
        "INSERT INTO maintctl_media_deletions (memory_id, path, queued_at) VALUES ('gone', ?, ?)",
        str(photo.resolve()),
        NOW,
    )
    core.memory("new", status="confirmed", media="x.jpg")

    result = expire(maintctl, core)

    assert_kept(result, photo, "memory new uses it")
    assert core.sql("SELECT count(*) FROM maintctl_media_deletions") == [(0,)]


def test_a_link_that_leads_nowhere_is_left_alone_and_reported(maintctl, core, media_dir):
    (media_dir / "dangling.jpg").symlink_to("never-written.jpg")
    core.memory("gone", status="pending", expires=PAST, media="dangling.jpg")

    result = expire(maintctl, core)

    assert os.path.lexists(media_dir / "dangling.jpg")
    assert memory_ids(core) == set()
    assert result.action("expire-pending")["warnings"] == [
        "memory gone: media path 'dangling.jpg' is a link that leads nowhere; left alone"
    ]


def test_a_link_outside_that_leads_back_inside_touches_nothing(maintctl, core, media_dir, tmp_path):
    photo = photo_in(media_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "back.jpg").symlink_to(photo)
    (media_dir / "out").symlink_to(outside)
    core.memory("gone", status="pending", expires=PAST, media="out/back.jpg")

    result = expire(maintctl, core)

    assert photo.exists() and (outside / "back.jpg").is_symlink()
    assert result.action("expire-pending")["warnings"] == [
        f"memory gone: media file 'out/back.jpg' is outside the media directory {media_dir}; left alone"
    ]


def scenario(core, media_dir, name):
    """Set up one of the cases for the dry-run comparison."""
    photo_in(media_dir)
    (media_dir / "alias.jpg").symlink_to("x.jpg")
    if name == "kept by name":
        core.memory("kept", status="confirmed", media="./x.jpg")
    if name == "kept through a link":
        (media_dir / "kept-alias.jpg").symlink_to("x.jpg")
        core.memory("kept", status="confirmed", media="kept-alias.jpg")
    core.memory("gone1", status="pending", expires="2026-11-22T09:00:00.000Z", media="x.jpg")
    core.memory("gone2", status="pending", expires="2026-11-22T09:10:00.000Z", media="x.jpg")
    core.memory("gone3", status="pending", expires="2026-11-22T09:20:00.000Z", media="alias.jpg")


@pytest.mark.parametrize("name", ["kept by name", "kept through a link", "shared by the expiring only"])
def test_the_dry_run_shows_the_files_the_pass_deletes_and_keeps(maintctl, core, media_dir, name):
    scenario(core, media_dir, name)
    present = {path.name for path in media_dir.iterdir()}

    dry = expire(maintctl, core, "--dry-run").action("expire-pending")
    real = expire(maintctl, core, env={"MAINTCTL_BATCH_SIZE": "1"}).action("expire-pending")

    deleted = {os.path.basename(item["delete_file"]) for item in dry["planned"] if item["delete_file"]}
    assert deleted == present - {path.name for path in media_dir.iterdir()}
    assert dry["counts"] == real["counts"]
    assert dry["warnings"] == real["warnings"]
    if name == "shared by the expiring only":
        assert [item["delete_file"] is not None for item in dry["planned"]] == [False, True, True]
        assert real["counts"]["files_deleted"] == 2 and real["warnings"] == []
    else:
        assert len(real["warnings"]) == 2  # gone1 and gone2: x.jpg stays; the link alias.jpg goes


def test_init_db_makes_the_index_that_finds_other_users_and_doctor_names_it(maintctl, core, redis_url, media_dir):
    core.sql("DROP INDEX maintctl_memories_media_name")

    missing = maintctl("doctor", "--db", core.path, "--redis-url", redis_url)
    made = maintctl("init-db", "--db", core.path, "--json")
    checked = maintctl("doctor", "--db", core.path, "--redis-url", redis_url)

    assert missing.code == 1 and "missing maintctl_memories_media_name: run maintctl init-db" in missing.out
    assert made.json()["created"] == ["maintctl_memories_media_name"]
    assert checked.code == 0, checked
