"""The supervisor of ``authserver serve --workers N`` (N > 1): one listening socket per worker.

uvicorn's own supervisor binds one socket and hands it to every worker. The worker whose
event loop wakes first accepts everything queued (asyncio accepts up to the backlog per
wake-up), so a burst of new connections (a proxy's pool, a benchmark's 32) can all land
on one worker while the other idles: measured 32/0 in two of six runs, at half the
throughput (docs/performance.md). Here each worker binds a socket of its own with
``SO_REUSEPORT`` and the kernel spreads new connections over them by a hash of each
connection's addresses and ports.

The catch of ``SO_REUSEPORT``: a process of the same user that sets it on the same address
joins the group and silently takes a share of the connections. Two guards keep another
server out:

- a lock per address, an abstract Unix socket named after it (Linux; gone with the
  process): a second ``authserver serve`` on the same host and port is refused at once,
  even while the first one's workers are still starting;
- the address itself, bound first *without* ``SO_REUSEPORT`` (refused if anything
  listens there) and held by the supervisor, bound and never listening (it receives no
  connection), for its whole life; only then is reuse allowed, for its own workers. Another
  program's listener on the port then makes the workers fail to start, never share it.

What the supervisor does, as uvicorn's does:

- ``SIGINT``/``SIGTERM``: every worker gets ``SIGTERM`` (uvicorn's graceful shutdown:
  requests in progress finish) and the supervisor exits when they have;
- ``SIGHUP``: a rolling restart, one worker at a time, each replacement serving before its
  predecessor stops;
- a worker that dies after it started serving is replaced at once;
- a worker that dies before it could serve (its app failed to load: the log says why)
  stops the server with status 1 if no worker has served yet (a broken configuration
  fails fast); once the server has served, it is retried after 1 s, then 2, 4, … 30 s,
  so a bad moment (a database restarting) neither stops the node nor spins the CPU.

Unlike uvicorn's, it does not ping workers to find a hung one, nor change their number
on ``SIGTTIN``/``SIGTTOU``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

import structlog
import uvicorn

log = structlog.get_logger("authserver.serve")

TICK = 0.5
"""Seconds between two looks at the workers."""
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
"""Backoff for a worker that failed to start while others serve."""
READY_TIMEOUT = 120.0
"""How long a rolling restart waits for a replacement to serve before giving up on it."""

_spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the parent's state


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Held:
    """The address held for the server's life: the lock and the bound socket."""

    def __init__(self, lock: socket.socket, sock: socket.socket) -> None:
        self.lock = lock
        self.sock = sock

    def close(self) -> None:
        self.sock.close()
        self.lock.close()


def hold_address(host: str, port: int) -> Held:
    """Take the address's lock, bind ``host:port`` without ``SO_REUSEPORT``, then allow it
    for our workers (see the module's docstring).

    Raises ``OSError`` (``EADDRINUSE``) when another ``authserver serve`` or anything
    listening holds the address."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0authserver-serve:{host}:{port}")
    except OSError:
        lock.close()
        raise
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart is not blocked by TIME_WAIT
        sock.bind((host, port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        sock.close()
        lock.close()
        raise
    return Held(lock, sock)


def worker_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket on the held address; uvicorn calls ``listen`` on it once the
    app has started, so no connection waits on a worker that is still loading."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor when it serves."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _run_worker(config: uvicorn.Config, ready: Event) -> None:
    """A worker process's body (in a spawned interpreter)."""
    config.configure_logging()
    sock = worker_socket(config.host, config.port)
    # uvicorn re-raises a SIGINT (a terminal's Ctrl+C) once it has stopped: not an error here
    with contextlib.suppress(KeyboardInterrupt):
        _Server(config, ready).run(sockets=[sock])


class _Worker:
    def __init__(self, config: uvicorn.Config) -> None:
        self.ready = _spawn.Event()
        self.announced = False  # its "worker_serving" line is logged
        self.process: BaseProcess = _spawn.Process(target=_run_worker, args=(config, self.ready),
                                                   name="authserver-worker")
        self.process.start()

    def stop(self) -> None:
        if self.process.exitcode is None and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGTERM)

    def kill(self, grace: float) -> None:
        """Stop, and kill if still there after ``grace`` seconds (a worker stuck in startup)."""
        self.stop()
        self.process.join(grace)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


class Supervisor:
    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config = config
        self.count = workers
        self.workers: list[_Worker] = []
        self.backoff: dict[int, float] = {}  # slot -> the last retry delay, until it serves again
        self.due: dict[int, float] = {}  # slot -> when its failed worker is started again
        self.signals: list[int] = []
        self.stopping = threading.Event()
        self.served = False  # has any worker served yet
        self.status = 0

    def run(self) -> int:
        """Serve until stopped; returns the exit status. The caller holds the address
        (:func:`hold_address`) while this runs."""
        handlers = {sig: signal.signal(sig, lambda sig, _frame: self.signals.append(sig))
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for _ in range(self.count):
                self.workers.append(_Worker(self.config))
            while not self.stopping.is_set():
                time.sleep(TICK)
                self._handle_signals()
                self._tend()
        finally:
            # also when the loop itself failed (no process left to spawn): no worker outlives us
            for worker in self.workers:
                worker.stop()
            for worker in self.workers:
                worker.process.join()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return self.status

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGHUP:
                log.info("workers_restarting", signal="SIGHUP")
                self._restart_all()
            else:
                log.info("server_stopping", signal=signal.Signals(sig).name)
                self.stopping.set()

    def _restart_all(self) -> None:
        for slot, old in enumerate(self.workers):
            new = _Worker(self.config)
            deadline = time.monotonic() + READY_TIMEOUT
            while not new.ready.wait(TICK):
                if self._stop_requested():
                    new.kill(grace=5)
                    return
                if not new.process.is_alive() or time.monotonic() > deadline:
                    new.kill(grace=5)
                    log.error("workers_restart_abandoned", reason="a new worker did not start; the running ones stay")
                    return
            old.stop()
            old.process.join()
            self.workers[slot] = new

    def _stop_requested(self) -> bool:
        return any(sig != signal.SIGHUP for sig in self.signals)

    def _tend(self) -> None:
        """Replace dead workers (see the module's docstring)."""
        if self.stopping.is_set() or self._stop_requested():
            return  # the workers may have had the signal too (a terminal's Ctrl+C): not a death
        now = time.monotonic()
        for slot, worker in enumerate(self.workers):
            if worker.ready.is_set():  # it served, even if it has died since the last look
                self.served = True
                if not worker.announced:
                    worker.announced = True
                    log.info("worker_serving", pid=worker.process.pid)
            if worker.process.is_alive():
                if worker.ready.is_set():
                    self.backoff.pop(slot, None)
                continue
            if worker.ready.is_set():
                log.warning("worker_exited", pid=worker.process.pid, status=worker.process.exitcode)
                self.workers[slot] = _Worker(self.config)
                continue
            if not self.served:
                log.error("worker_failed_to_start", status=worker.process.exitcode,
                          action="stopping: no worker has served yet")
                self.status = 1
                self.stopping.set()
                return
            due = self.due.get(slot)
            if due is None:
                delay = min(self.backoff.get(slot, RETRY_FIRST / 2) * 2, RETRY_MAX)
                self.backoff[slot] = delay
                self.due[slot] = now + delay
                log.error("worker_failed_to_start", status=worker.process.exitcode, retry_in_seconds=delay)
            elif now >= due:
                del self.due[slot]
                self.workers[slot] = _Worker(self.config)
