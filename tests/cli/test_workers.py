"""``authserver serve --workers 2``'s own supervisor (authserver/cli/workers.py), as a real
process: a listening socket per worker, so the kernel spreads a burst of new connections
over both; the port held against a second server; dead workers replaced; a rolling
restart on SIGHUP; a worker that cannot start retried while the other serves, and the
server stopped when none can.

Sockets and their owners are read from ``/proc`` (Linux, as ``SO_REUSEPORT`` is)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serving import AUTHSERVER, free_port

pytestmark = pytest.mark.slow

LISTEN, ESTABLISHED = "0A", "01"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    keys: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.base}/.well-known/openid-configuration", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def listeners(self) -> Counter[int]:
        """Listening sockets on the port, counted by owning process."""
        return owners(socket_inodes(self.port, LISTEN))


def socket_inodes(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets whose local port is ``port`` in ``state`` (/proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    return inodes


def owners(inodes: set[str]) -> Counter[int]:
    """How many of ``inodes`` each process holds open (a socket shared by two processes
    counts for both)."""
    held: Counter[int] = Counter()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    held[int(pid)] += 1
        except OSError:  # gone, or not ours to read
            continue
    return held


def wait_for(condition: Callable[[], object], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.2)


def start(tmp_path: Path, port: int | None = None, name: str = "server") -> Server:
    port = port or free_port()
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update({"AUTHSERVER_DATABASE_URL": f"sqlite:///{tmp_path / 'auth.db'}", "AUTHSERVER_KEYS_DIR": str(keys),
                "AUTHSERVER_ISSUER": f"http://127.0.0.1:{port}", "AUTHSERVER_RATE_LIMITS": "off"})
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(AUTHSERVER), "serve", "--port", str(port), "--workers", "2"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(process, port, env, keys, log)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = start(tmp_path)
    try:
        # serving as the supervisor sees it (a worker listens a moment before it says it
        # serves; killed in between, it counts as one that failed to start)
        wait_for(lambda: s.process.poll() is not None or (
            len(s.listeners()) == 2 and s.log.read_text().count('"event": "worker_serving"') == 2))
        assert s.process.poll() is None, s.log.read_text()[-3000:]
        yield s
    finally:
        stop(s)


def stop(s: Server) -> None:
    """SIGTERM to the process group (a worker left behind by a dead supervisor too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(s.process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        s.process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(s.process.pid, signal.SIGKILL)
    s.process.wait()


def test_each_worker_listens_on_its_own_socket_and_a_burst_is_spread(server):
    listeners = server.listeners()
    # two sockets, one per worker (uvicorn's supervisor shares one socket: 1 inode, held by both)
    assert len(socket_inodes(server.port, LISTEN)) == 2
    assert len(listeners) == 2 and set(listeners.values()) == {1}
    assert server.process.pid not in listeners  # the supervisor's own socket never listens

    # a burst of 32 connections opened at once, as wrk opens them: each worker gets a share
    burst = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(32)]
    try:
        for conn in burst:
            conn.sendall(f"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1:{server.port}"
                         "\r\n\r\n".encode())
        for conn in burst:
            assert conn.recv(12).startswith(b"HTTP/1.1 200")
        served = owners(socket_inodes(server.port, ESTABLISHED))
        assert set(served) == set(listeners)
        # the kernel hashes each connection's ports: either worker below 4 of 32 has p < 3e-6
        assert min(served.values()) >= 4, served
    finally:
        for conn in burst:
            conn.close()


def test_a_second_server_on_the_port_is_refused(server, tmp_path):
    (tmp_path / "second").mkdir()
    second = start(tmp_path / "second", server.port, "second")
    try:
        assert second.process.wait(timeout=60) == 2
    finally:
        stop(second)
    assert f"error: cannot listen on 127.0.0.1:{server.port}: Address already in use" in second.log.read_text()
    assert len(server.listeners()) == 2  # the first server lost no worker and no socket


def test_two_servers_started_together_one_serves_the_other_is_refused(tmp_path):
    """While the first one's workers still start, nothing listens on the port yet: the
    per-address lock refuses the second all the same."""
    port = free_port()
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    one, two = (start(tmp_path / name, port, name) for name in ("one", "two"))
    try:
        wait_for(lambda: one.process.poll() is not None or two.process.poll() is not None)
        refused, serving = (one, two) if one.process.poll() is not None else (two, one)
        assert refused.process.wait() == 2
        assert "Address already in use" in refused.log.read_text()
        wait_for(lambda: len(serving.listeners()) == 2)
        assert serving.process.pid not in serving.listeners() and serving.answers()
    finally:
        stop(one)
        stop(two)


def test_a_killed_worker_is_replaced_and_sigterm_stops_every_worker(server):
    first, other = server.listeners()
    os.kill(first, signal.SIGKILL)

    def replaced() -> bool:
        # one look at /proc: two separate looks could see both workers, then the killed
        # one gone, before any replacement exists
        now = server.listeners()
        return len(now) == 2 and first not in now

    wait_for(replaced)
    assert other in server.listeners() and server.answers()
    assert '"event": "worker_exited"' in server.log.read_text()

    workers = set(server.listeners())
    os.kill(server.process.pid, signal.SIGTERM)  # the supervisor alone, not its process group
    assert server.process.wait(timeout=30) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not socket_inodes(server.port, LISTEN)


def test_sighup_replaces_the_workers_one_at_a_time(server):
    before = set(server.listeners())
    os.kill(server.process.pid, signal.SIGHUP)
    seen_serving = []

    def replaced() -> bool:
        # a request that reached a stopping worker before it stopped listening may be cut
        # (docs/decisions.md): at most one retry, as a client would
        seen_serving.append(len(server.listeners()) >= 1 and (server.answers() or server.answers()))
        now = set(server.listeners())
        return len(now) == 2 and not now & before

    wait_for(replaced)
    assert all(seen_serving), seen_serving  # a rolling restart: never without a serving worker
    assert server.process.poll() is None


def test_a_worker_that_cannot_start_is_retried_while_the_other_serves(server):
    stray = server.keys / "stray.pem"
    stray.write_text("not a key")
    stray.chmod(0o644)  # a key file readable by others: the app refuses to start (keys/service.py)
    first, other = server.listeners()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: '"retry_in_seconds": 1.0' in server.log.read_text())
    wait_for(lambda: '"retry_in_seconds": 2.0' in server.log.read_text())  # backing off
    assert set(server.listeners()) == {other} and server.answers()

    stray.unlink()
    wait_for(lambda: len(server.listeners()) == 2)
    assert server.answers()


def test_once_served_the_server_outlives_workers_that_cannot_start(server):
    """A bad moment after the server has served (here a key file others can read; in life
    a database restarting) does not stop the node: every slot is retried with backoff."""
    stray = server.keys / "stray.pem"
    stray.write_text("not a key")
    stray.chmod(0o644)
    for pid in server.listeners():
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: server.log.read_text().count('"retry_in_seconds": 2.0') >= 2)  # both slots back off
    assert server.process.poll() is None and not socket_inodes(server.port, LISTEN)
    stray.unlink()
    wait_for(lambda: len(server.listeners()) == 2)
    assert server.answers()


def test_a_server_whose_workers_cannot_start_stops_with_status_1(tmp_path):
    """Before any worker has served, a failed start is a broken setup: fail fast. Here
    another program listens on the port between the supervisor's hold and the workers'
    binds (it may: the held socket never listens), and the workers refuse to share it."""
    s = start(tmp_path)
    intruder = socket.socket()
    try:
        lock = f"@authserver-serve:127.0.0.1:{s.port}"
        wait_for(lambda: s.process.poll() is not None or any(
            line.rstrip().endswith(lock) for line in Path("/proc/net/unix").read_text().splitlines()))
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.bind(("127.0.0.1", s.port))
        intruder.listen()
        assert s.process.wait(timeout=90) == 1
        log = s.log.read_text()
        assert '"event": "worker_failed_to_start"' in log and "no worker has served yet" in log
        assert owners(socket_inodes(s.port, LISTEN)) == {os.getpid(): 1}  # the intruder alone
    finally:
        intruder.close()
        stop(s)
