"""``authserver serve`` as a real process for the tests that need several workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

AUTHSERVER = Path(sys.executable).with_name("authserver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(port: int, env: dict[str, str], *, workers: int = 2, start_seconds: int = 90) -> Iterator[None]:
    """``authserver serve --port PORT --workers N`` with ``env``, until discovery answers
    (a loaded machine may take a minute to start two workers); stopped with SIGTERM to
    its process group (SIGKILL after 20 s). Its output goes to a file (a pipe nobody reads
    would block a talkative server), read only to explain a failed start."""
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([str(AUTHSERVER), "serve", "--port", str(port), "--workers", str(workers)],
                                   env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            for _ in range(start_seconds * 10):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration",
                                 timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    output.seek(0)
                    pytest.fail(f"the server stopped: {output.read().decode(errors='replace')[-4000:]}")
                time.sleep(0.1)
            else:
                pytest.fail("the server did not start")
            yield
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
