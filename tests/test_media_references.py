"""expire-pending removes a link as a link, and touches nothing a path
does not lead to inside the media directory."""

import os

import pytest
from test_expire_pending import expire, media_dir, memory_ids  # noqa: F401 - media_dir is a fixture

PAST = "2026-11-22T09:00:00.000Z"


def photo_in(directory, name="x.jpg"):
    photo = directory / name
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(b"jpeg")
    return photo


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
