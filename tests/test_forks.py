"""The fork server the `maintctl` fixture runs commands through (tests/forkserver.py) gives what a new
interpreter gives: exit status, stdout and stderr kept apart, byte for byte, under the test's environment,
directory and umask."""

import os
import subprocess
import sys

import pytest
from conftest import CLEAN_ENV, NOW


def new_interpreter(arguments, cwd, env=None):
    completed = subprocess.run(  # noqa: PLW1510 - the exit code is compared
        [sys.executable, "-m", "maintctl", *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**CLEAN_ENV, **(env or {})},
        timeout=120,
    )
    return completed.returncode, completed.stdout, completed.stderr


@pytest.mark.parametrize(
    "arguments, env",
    [
        (["--help"], None),
        (["fire-reminders", "--help"], None),
        (["no-such-command"], None),
        (["fire-reminders", "--db", "missing.db", "--now", NOW], None),
        (["fire-reminders", "--db", "missing.db", "--now", NOW, "--json"], None),
        (["fire-reminders", "--db", "core.db", "--now", NOW, "--dry-run"], None),
        (["status", "--db", "core.db", "--now", NOW], None),
        (["run-all", "--db", "core.db"], {"MAINTCTL_BATCH_SIZE": "0"}),
        (["history", "--db", "core.db", "--limit", "x"], {"PYTHONIOENCODING": "ascii"}),
    ],
)
def test_a_fork_gives_what_a_new_interpreter_gives(command_forks, core, tmp_path, arguments, env):
    if command_forks is None:
        pytest.skip("every command is a new interpreter (MAINTCTL_TESTS_NEW_INTERPRETERS=1)")
    core.reminder("r1")

    forked = command_forks.run([*map(str, arguments)], {**CLEAN_ENV, **(env or {})}, tmp_path, 120)

    assert forked == new_interpreter(arguments, tmp_path, env)


def test_a_fork_has_the_tests_umask(command_forks, core, tmp_path):
    if command_forks is None:
        pytest.skip("every command is a new interpreter (MAINTCTL_TESTS_NEW_INTERPRETERS=1)")
    previous = os.umask(0o077)
    try:
        code, _, err = command_forks.run(["init-db", "--db", "new.db"], CLEAN_ENV, tmp_path, 120)
    finally:
        os.umask(previous)

    assert code == 0, err
    assert os.stat(tmp_path / "new.db").st_mode & 0o777 == 0o600
