"""Containerfile: the image the README's build command makes, as the Kubernetes examples name it."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILDER = shutil.which("podman") or shutil.which("buildah")


def test_the_kubernetes_examples_name_the_image_the_build_command_makes():
    build = "podman build -t maintctl -f Containerfile ."

    assert build in (ROOT / "README.md").read_text()
    for example in (ROOT / "examples" / "kubernetes").glob("*.yaml"):
        assert "image: localhost/maintctl:latest" in example.read_text(), example.name


@pytest.mark.slow
@pytest.mark.skipif(BUILDER is None, reason="neither podman nor buildah is installed (Debian: apt-get install podman)")
def test_the_image_builds_with_maintctl_as_its_entrypoint_and_a_user_that_is_not_root():
    name = "localhost/maintctl-test:latest"
    built = subprocess.run(
        [BUILDER, "build", "-t", name, "-f", "Containerfile", "."],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
        inspected = subprocess.run(
            [BUILDER, "inspect", "--type", "image", name]
            if BUILDER.endswith("buildah")
            else [BUILDER, "image", "inspect", name],
            check=True,
            capture_output=True,
            text=True,
        )
        found = json.loads(inspected.stdout)
        config = found[0]["Config"] if isinstance(found, list) else found["OCIv1"]["config"]
        assert config["Entrypoint"] == ["maintctl"]
        assert config["User"] == "10001:10001"
    finally:
        subprocess.run([BUILDER, "rmi", "-f", name], check=False, capture_output=True)
