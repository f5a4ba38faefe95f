"""Side by side with a peer server, in one run: the same wrk loads and the same Python
code-flow client against our server and the peer, one after the other, repeated.

    bench/run --peer DIR [--repeat 3] [--scaling]
    .venv/bin/python bench/side_by_side.py --peer DIR [options]

DIR is a copy of panva's oidc-provider peer setup (``server.mjs``, started with
``node server.mjs``; its ``npm ci`` done; see bench/README.md). Ours runs with
``--workers 2`` (``authserver serve``) on Postgres (database ``authserver_sbs``,
dropped and recreated) and a private ``redis-server`` on its own port (so its command
counts are ours alone). The peer runs as one Node process with its in-memory adapter.
Never both at once: each block starts one server, runs every load, stops it.

Loads (wrk, ``bench/lua/result.lua``; 1 thread, 32 connections by default):
discovery, JWKS, client_credentials (RS256 JWT access token), introspection (ours: a
JWT access token, with the revocation check; the peer: an opaque token, the only kind
it introspects), the full code flow (``bench/codeflow.py``, same client, sequential)
and, ours only, refresh-token rotation.

Around each of our measured runs it also reads per-request costs: Postgres
transactions, index/sequential scans and rows written (``pg_stat_database``,
``pg_stat_user_tables`` deltas of our database), Redis commands (``INFO stats``
``total_commands_processed`` delta of the private server), and CPU seconds of the
server processes, of our Postgres backends and of redis-server. With ``--scaling`` a
last block runs ours with one worker, for the 1-vs-2-worker figure.

Prints a Markdown report (ratios ours/peer per repeat, min-max) and writes it to
``bench/results/latest-peer.md``; raw output goes to ``bench/results/peer-<UTC>/``.
Figures only, nothing asserts.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
LUA = str(ROOT / "bench" / "lua" / "result.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DB_NAME = "authserver_sbs"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_OURS = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REFRESH_WARMUP_TOKENS = 6_000  # per run: a 2 s warm-up at up to 3,000 rps
LOADS = ["discovery", "jwks", "client_credentials", "introspection", "codeflow", "refresh"]
TARGETS = {"discovery": 1.0, "jwks": 1.0, "client_credentials": 1.1, "introspection": 0.6, "codeflow": 1.0}


def log(msg: str) -> None:
    print(f"== {msg}", file=sys.stderr, flush=True)


# -- processes -------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class RssSampler(threading.Thread):
    """The highest VmRSS of each process, sampled every 0.2 s while a load runs."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: rss_kib(pid) for pid in pids}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kib(pid))

    def stop(self) -> dict[int, int]:
        self.halt.set()
        self.join()
        return self.peak


def wait_up(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    for _ in range(900):  # 90 s: worker processes import slowly on a busy machine
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    sys.stderr.write(log_path.read_text()[-3000:])
    raise SystemExit(f"server did not come up: {url}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        for pid in reversed(tree(proc.pid)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(5)


# -- wrk ---------------------------------------------------------------------------------


def wrk(args: argparse.Namespace, out: Path, label: str, url: str, *, method: str = "GET", body: str = "",
        auth: str = "", body_file: str = "", warmup_file: str = "") -> dict[str, Any]:
    """One measured wrk run after a warm-up; single-use bodies (``body_file``) warm up
    on bodies of their own (``warmup_file``), never on the measured ones."""
    env = {**os.environ, "BENCH_LABEL": label, "BENCH_METHOD": method, "BENCH_BODY": body,
           "BENCH_AUTH": auth, "BENCH_BODY_FILE": body_file}
    base = ["wrk", "-t1", f"-c{args.connections}", "--timeout", "5s", "-s", LUA, url]
    if args.warmup and (warmup_file or not body_file):
        subprocess.run([*base[:2], f"-d{args.warmup}s", *base[2:]], env={**env, "BENCH_BODY_FILE": warmup_file},
                       capture_output=True, check=False)
    done = subprocess.run([*base[:2], f"-d{args.duration}s", *base[2:]], env=env, capture_output=True,
                          text=True, check=False)
    (out / f"{label}.wrk").write_text(done.stdout + done.stderr)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result for {label}: {done.stderr[-500:]}")
    result: dict[str, Any] = {}
    for item in line.split()[1:]:
        key, value = item.split("=", 1)
        result[key] = value if key == "label" else float(value)
    return result


def codeflow(args: argparse.Namespace, out: Path, label: str, base: str, extra: list[str]) -> dict[str, Any]:
    path = out / f"{label}.json"
    subprocess.run([PY, str(ROOT / "bench" / "codeflow.py"), "--base", base, "--iterations",
                    str(args.codeflow_iterations), "--out", str(path), *extra],
                   capture_output=True, check=False)
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"skipped": "no output"}
    return result


# -- our server ----------------------------------------------------------------------------


class Ours:
    name = "ours"

    def __init__(self, args: argparse.Namespace, work: Path, out: Path) -> None:
        self.args, self.work, self.out = args, work, out
        self.base = f"http://127.0.0.1:{args.port}"
        self.redis_port = args.redis_port
        self.redis: subprocess.Popen[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "AUTHSERVER_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}",
            "AUTHSERVER_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AUTHSERVER_RATE_LIMITS": "off",
            "AUTHSERVER_LOG_LEVEL": "warning",
            "AUTHSERVER_KEYS_DIR": str(work / "keys"),
            "AUTHSERVER_ISSUER": self.base,
            "AUTHSERVER_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTHSERVER_KEY_ACTIVATION_DELAY": "0",
            # the code flow measures the protocol, not Argon2 (the first login rehashes)
            "AUTHSERVER_ARGON2_MEMORY_COST": "8",
            "AUTHSERVER_ARGON2_TIME_COST": "1",
        }
        self.refresh_files: list[str] = []
        self.refresh_warmup_files: list[str] = []
        self.state: dict[str, Any] = {}
        self.run_no = 0

    def setup(self) -> None:
        import psycopg

        (self.work / "keys").mkdir(mode=0o700)
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        authserver = str(ROOT / ".venv" / "bin" / "authserver")
        subprocess.run([authserver, "migrate"], env=self.env, check=True, capture_output=True)
        state_path = self.work / "state.json"
        subprocess.run([PY, "bench/seed.py", "base", "--out", str(state_path)], env=self.env, cwd=ROOT,
                       check=True, capture_output=True)
        self.state = json.loads(state_path.read_text())
        runs = self.args.repeat + (1 if self.args.scaling else 0)
        per_run = self.args.refresh_per_run
        tokens = self.work / "refresh.txt"
        per_warmup = REFRESH_WARMUP_TOKENS
        subprocess.run([PY, "bench/seed.py", "refresh", "--state", str(state_path), "--count",
                        str((per_run + per_warmup) * runs), "--out", str(tokens)], env=self.env, cwd=ROOT,
                       check=True, capture_output=True)
        lines = iter(tokens.read_text().split())
        for i in range(runs):
            for kind, count, files in (("warmup", per_warmup, self.refresh_warmup_files),
                                       ("run", per_run, self.refresh_files)):
                path = self.work / f"refresh-{kind}-{i}.txt"
                path.write_text("".join(f"grant_type=refresh_token&refresh_token={next(lines)}\n"
                                        for _ in range(count)))
                files.append(str(path))
        with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as a database in service would be, not fresh from a bulk insert

    def teardown(self) -> None:
        stop(self.proc)
        stop(self.redis)

    def start(self, workers: int) -> None:
        log_path = self.out / "ours-server.log"
        self.workers = workers
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "authserver"), "serve", "--port", str(self.args.port),
                 "--workers", str(workers)], env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        wait_up(f"{self.base}/.well-known/openid-configuration", self.proc, log_path)
        for _ in range(50):  # every worker up (uvicorn's spawned processes)
            if len(self.worker_pids()) >= workers:
                break
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        if self.workers == 1:
            return [self.proc.pid]
        return [p for p in tree(self.proc.pid) if "spawn_main" in cmdline(p)]

    def server_pids(self) -> list[int]:
        assert self.proc is not None
        return tree(self.proc.pid)

    # per-request costs ------------------------------------------------------------------

    def counters(self) -> dict[str, float]:
        import psycopg

        with psycopg.connect(PG_OURS, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = %s", (DB_NAME,)).fetchone()
            scans = conn.execute("SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) "
                                 "FROM pg_stat_user_tables").fetchone()
            backends = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DB_NAME,)).fetchall()]
        assert row is not None and scans is not None
        info = subprocess.run(["redis-cli", "-p", str(self.redis_port), "info", "stats"], capture_output=True,
                              text=True).stdout
        commands = int(re.search(r"total_commands_processed:(\d+)", info).group(1))  # type: ignore[union-attr]
        assert self.redis is not None
        return {
            "pg_xact": float(row[0]), "pg_rows_written": float(row[1]), "pg_scans": float(scans[0]),
            "redis_commands": float(commands),
            "cpu_server": cpu_seconds(self.server_pids()),
            "cpu_pg": cpu_seconds(backends), "cpu_redis": cpu_seconds([self.redis.pid]),
            "_backends": float(len(backends)),
        }

    def measured(self, label: str, requests_of: Any, fn: Any, sample_rss: bool = False) -> dict[str, Any]:
        time.sleep(1.2)  # Postgres flushes its statistics at most once a second
        before = self.counters()
        workers = self.worker_pids()
        worker_cpu = [cpu_seconds([pid]) for pid in workers]
        sampler = RssSampler(workers) if sample_rss else None
        if sampler:
            sampler.start()
        result: dict[str, Any] = fn()
        peaks = sampler.stop() if sampler else None
        worker_cpu = [cpu_seconds([pid]) - was for pid, was in zip(workers, worker_cpu, strict=True)]
        if len(workers) > 1 and sum(worker_cpu) > 0:  # how evenly the connections were spread
            result["worker_cpu_share"] = [round(100 * c / sum(worker_cpu)) for c in worker_cpu]
        time.sleep(1.2)
        after = self.counters()
        n = requests_of(result)
        if n:
            # a backend that left the pool during the run loses its CPU figure: a lower bound
            result["per_request"] = {k: (after[k] - before[k]) / n for k in before if not k.startswith("_")}
        if peaks is not None:
            result["rss_peak_kib"] = list(peaks.values())
        return result

    def loads(self) -> dict[str, dict[str, Any]]:
        b, st, out = self.base, self.state, self.out
        tag = f"ours-w{self.workers}-{self.run_no}"
        cc = "Basic " + base64.b64encode(f"{st['cc']['client_id']}:{st['cc']['client_secret']}".encode()).decode()
        rt = "Basic " + base64.b64encode(
            f"{st['refresh']['client_id']}:{st['refresh']['client_secret']}".encode()).decode()
        wrk_n = lambda r: r.get("requests", 0)  # noqa: E731
        res: dict[str, dict[str, Any]] = {}
        want = self.args.only.__contains__
        if want("discovery"):
            res["discovery"] = self.measured("discovery", wrk_n, lambda: wrk(
                self.args, out, f"{tag}-discovery", f"{b}/.well-known/openid-configuration"))
            # after a first load: a spawned worker may still be importing right after start
            pids = self.worker_pids()
            res["rss_idle_kib"] = {"workers": [rss_kib(p) for p in pids], "pids": pids}  # type: ignore[dict-item]
        if want("jwks"):
            res["jwks"] = self.measured("jwks", wrk_n, lambda: wrk(
                self.args, out, f"{tag}-jwks", f"{b}/jwks.json"))
        if want("client_credentials"):
            res["client_credentials"] = self.measured("client_credentials", wrk_n, lambda: wrk(
                self.args, out, f"{tag}-client_credentials", f"{b}/token", method="POST",
                body="grant_type=client_credentials&scope=api%3Aread", auth=cc), sample_rss=True)
        if want("introspection"):
            token = httpx.post(f"{b}/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                               auth=(st["cc"]["client_id"], st["cc"]["client_secret"])).json()["access_token"]
            res["introspection"] = self.measured("introspection", wrk_n, lambda: wrk(
                self.args, out, f"{tag}-introspection", f"{b}/introspect", method="POST",
                body=f"token={token}&token_type_hint=access_token", auth=cc))
            check = httpx.post(f"{b}/introspect", data={"token": token}, auth=(st["cc"]["client_id"],
                                                                               st["cc"]["client_secret"]))
            res["introspection"]["still_active"] = bool(check.json().get("active"))
        if want("refresh"):
            res["refresh"] = self.measured("refresh", wrk_n, lambda: wrk(
                self.args, out, f"{tag}-refresh", f"{b}/token", method="POST", auth=rt,
                body_file=self.refresh_files[self.run_no], warmup_file=self.refresh_warmup_files[self.run_no]))
        if want("codeflow"):
            res["codeflow"] = self.measured("codeflow", lambda r: r.get("iterations", 0) - r.get("errors", 0),
                                            lambda: codeflow(self.args, out, f"{tag}-codeflow", b, [
                                                "--state", str(self.work / "state.json"),
                                                "--scope", "openid offline_access"]))
        pids = self.worker_pids()  # a pid that changed: uvicorn restarted a worker
        res["rss_end_kib"] = {"workers": [rss_kib(p) for p in pids], "pids": pids}  # type: ignore[dict-item]
        self.run_no += 1
        return res


# -- the peer --------------------------------------------------------------------------------


class Peer:
    name = "peer"

    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args, self.out = args, out
        self.dir = Path(args.peer).resolve()
        self.base = f"http://127.0.0.1:{args.peer_port}"
        if not (self.dir / "server.mjs").is_file():
            raise SystemExit(f"--peer {args.peer}: no server.mjs there (a copy of the peer setup is needed)")
        source = (self.dir / "server.mjs").read_text()

        def const(name: str) -> str:
            m = re.search(rf"{name}\s*=\s*'([^']*)'", source)
            if not m:
                raise SystemExit(f"{name} not found in the peer's server.mjs")
            return m.group(1)

        self.client_id, self.client_secret = const("CLIENT_ID"), const("CLIENT_SECRET")
        self.redirect_uri = const("REDIRECT_URI")
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self.version = json.loads((self.dir / "node_modules" / "oidc-provider" / "package.json")
                                      .read_text())["version"]
        except OSError:
            raise SystemExit("the peer directory has no node_modules/oidc-provider: run `npm ci` there") from None

    def start(self) -> None:
        log_path = self.out / "peer-server.log"
        env = {**os.environ, "NODE_ENV": "production", "PORT": str(self.args.peer_port), "DEV_INTERACTIONS": "1"}
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen(["node", "server.mjs"], cwd=self.dir, env=env, stdout=fh,
                                         stderr=subprocess.STDOUT)
        wait_up(f"{self.base}/.well-known/openid-configuration", self.proc, log_path)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def measured(self, requests_of: Any, fn: Any, sample_rss: bool = False) -> dict[str, Any]:
        assert self.proc is not None
        pid = self.proc.pid
        before = cpu_seconds([pid])
        sampler = RssSampler([pid]) if sample_rss else None
        if sampler:
            sampler.start()
        result: dict[str, Any] = fn()
        if sampler:
            result["rss_peak_kib"] = list(sampler.stop().values())
        n = requests_of(result)
        if n:
            result["per_request"] = {"cpu_server": (cpu_seconds([pid]) - before) / n}
        return result

    def loads(self) -> dict[str, dict[str, Any]]:
        assert self.proc is not None
        b, out, args = self.base, self.out, self.args
        tag = f"peer-{getattr(self, 'run_no', 0)}"
        basic = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        wrk_n = lambda r: r.get("requests", 0)  # noqa: E731
        res: dict[str, dict[str, Any]] = {}
        want = args.only.__contains__
        if want("discovery"):
            res["discovery"] = self.measured(wrk_n, lambda: wrk(
                args, out, f"{tag}-discovery", f"{b}/.well-known/openid-configuration"))
            res["rss_idle_kib"] = {"workers": [rss_kib(self.proc.pid)]}  # type: ignore[dict-item]
        if want("jwks"):
            res["jwks"] = self.measured(wrk_n, lambda: wrk(args, out, f"{tag}-jwks", f"{b}/jwks"))
        if want("client_credentials"):
            res["client_credentials"] = self.measured(wrk_n, lambda: wrk(
                args, out, f"{tag}-client_credentials", f"{b}/token", method="POST",
                body="grant_type=client_credentials&scope=api%3Aread", auth=basic), sample_rss=True)
        if want("introspection"):
            # a fresh opaque token (the peer's in-memory store is an LRU the run above churned)
            token = httpx.post(f"{b}/token", data={"grant_type": "client_credentials", "scope": "api:read",
                                                   "resource": "urn:bench:opaque"},
                               auth=(self.client_id, self.client_secret)).json()["access_token"]
            res["introspection"] = self.measured(wrk_n, lambda: wrk(
                args, out, f"{tag}-introspection", f"{b}/token/introspection", method="POST",
                body=f"token={token}&token_type_hint=access_token", auth=basic))
            check = httpx.post(f"{b}/token/introspection", data={"token": token},
                               auth=(self.client_id, self.client_secret))
            res["introspection"]["still_active"] = bool(check.json().get("active"))
        if want("codeflow"):
            res["codeflow"] = self.measured(lambda r: r.get("iterations", 0) - r.get("errors", 0), lambda: codeflow(
                args, out, f"{tag}-codeflow", b, [
                    "--authorize-path", "/auth", "--scope", "openid offline_access api:read",
                    "--client-id", self.client_id, "--client-secret", self.client_secret,
                    "--redirect-uri", self.redirect_uri, "--username", "alice", "--password", "x"]))
        res["rss_end_kib"] = {"workers": [rss_kib(self.proc.pid)]}  # type: ignore[dict-item]
        self.run_no = getattr(self, "run_no", 0) + 1
        return res


# -- report ----------------------------------------------------------------------------------


def machine(peer: Peer) -> dict[str, str]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               "unknown")
    mem = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
        "cores": str(os.cpu_count()), "ram": f"{mem / 1024 / 1024:.1f} GiB", "kernel": platform.release(),
        "python": platform.python_version(), "node": out(["node", "--version"]),
        "peer": f"oidc-provider {peer.version}",
        "postgres": out(["psql", PG_ADMIN, "-Atc", "SHOW server_version"]),
        "redis": out(["redis-server", "--version"]).split(" v=")[-1].split()[0] if shutil.which("redis-server")
        else "?",
        "commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "loadavg_start": open("/proc/loadavg").read().split(" ", 3)[:3].__str__(),
    }


def figure(r: dict[str, Any] | None, load: str) -> float | None:
    if not r or "skipped" in r:
        return None
    value = r.get("flows_per_s") if load == "codeflow" else r.get("rps")
    if value is None:
        return None
    if load != "codeflow" and (r.get("non2xx") or r.get("sock_errors")):
        return None  # a run with errors is not a measurement
    return float(value)


def fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def report(args: argparse.Namespace, info: dict[str, str], runs: list[dict[str, Any]],
           scaling: dict[str, Any] | None) -> str:
    lines = [f"# Side by side with {info['peer']} ({info['date']})", "",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, kernel {info['kernel']}; "
             f"Python {info['python']}, Node {info['node']}, Postgres {info['postgres']}, Redis {info['redis']}; "
             f"commit {info['commit']}; load average at start {info['loadavg_start']}.", "",
             f"Ours: `authserver serve --workers {args.workers}` on Postgres + Redis. Peer: one Node process, "
             f"in-memory adapter. wrk -t1 -c{args.connections} -d{args.duration}s after a {args.warmup}s "
             f"warm-up; code flow: {args.codeflow_iterations} flows one after another (same Python client). "
             f"{args.repeat} repeats, the two servers alternately (never at once). Ratio = ours / peer "
             "within the same repeat.", "",
             "| load | ours (median) | peer (median) | ratio per repeat | ratio min-max | goal "
             "| ours p99 ms | peer p99 ms |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    titles = {"discovery": "discovery", "jwks": "JWKS", "client_credentials": "client_credentials, RS256 JWT",
              "introspection": "introspection (ours: JWT + revocation check; peer: opaque)",
              "codeflow": "full code flow, flows/s (sequential)"}
    for load in ["discovery", "jwks", "client_credentials", "introspection", "codeflow"]:
        ours = [figure(r["ours"].get(load), load) for r in runs]
        peer = [figure(r["peer"].get(load), load) for r in runs]
        ratios = [o / p for o, p in zip(ours, peer, strict=True) if o and p]
        o_ok = [x for x in ours if x]
        p_ok = [x for x in peer if x]
        p99 = "p95_ms" if load == "codeflow" else "p99_ms"
        o99 = [r["ours"][load].get(p99) for r in runs if r["ours"].get(load, {}).get(p99) is not None]
        q99 = [r["peer"][load].get(p99) for r in runs if r["peer"].get(load, {}).get(p99) is not None]
        digits = 1 if load == "codeflow" else 0
        lines.append(
            f"| {titles[load]} | {fmt(statistics.median(o_ok) if o_ok else None, digits)} "
            f"| {fmt(statistics.median(p_ok) if p_ok else None, digits)} "
            f"| {', '.join(f'{x:.2f}' for x in ratios) or 'n/a'} "
            f"| {f'{min(ratios):.2f}-{max(ratios):.2f}' if ratios else 'n/a'} | >= {TARGETS[load]:.1f} "
            f"| {fmt(statistics.median(o99), 1) if o99 else 'n/a'} "
            f"| {fmt(statistics.median(q99), 1) if q99 else 'n/a'} |")
    rf = [r["ours"].get("refresh", {}) for r in runs]
    rps = [figure(x, "refresh") for x in rf]
    lines += ["", "Code flow p99 columns hold the p95. Requests from the authorization request to the callback "
              f"(login + consent): ours {runs[0]['ours'].get('codeflow', {}).get('requests', '?')}, "
              f"peer {runs[0]['peer'].get('codeflow', {}).get('requests', '?')}.",
              "", f"Refresh rotation (ours only, Postgres, {args.workers} workers): "
              + ", ".join(f"{fmt(x)} rps p99 {x_['p99_ms']:.1f} ms" for x, x_ in zip(rps, rf, strict=True)
                          if x is not None) + " (goal >= 1,000 rps, p99 < 50 ms).", ""]
    shares = [r["ours"].get("client_credentials", {}).get("worker_cpu_share") for r in runs]
    if any(shares):
        lines += ["Share of our server CPU taken by each worker during client_credentials, per repeat "
                  "(an even split means both workers had connections): "
                  + ", ".join("/".join(f"{x}%" for x in share) for share in shares if share) + ".", ""]
    lines += per_request_table([(f"{args.workers} workers", runs[-1]["ours"])]
                               + ([("1 worker", scaling)] if scaling else []))
    peer_cpu = [(load, runs[-1]["peer"].get(load, {}).get("per_request", {}).get("cpu_server"))
                for load in ["discovery", "jwks", "client_credentials", "introspection", "codeflow"]]
    lines += ["Peer CPU per request (ms, its one process): "
              + ", ".join(f"{load} {cpu * 1000:.3f}" for load, cpu in peer_cpu if cpu is not None)
              + " (code flow: per flow).", ""]
    lines += rss_lines(runs, scaling)
    bad = [f"{who} {load} repeat {i + 1}" for i, r in enumerate(runs) for who in ("ours", "peer")
           for load in LOADS if r[who].get(load) and (r[who][load].get("non2xx") or r[who][load].get("sock_errors")
                                                       or "skipped" in r[who][load]
                                                       or r[who][load].get("errors"))]
    if bad:
        lines += ["", "Runs with errors (not counted): " + ", ".join(bad)]
    return "\n".join(lines) + "\n"


def per_request_table(blocks: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = ["## Ours, per request (what a node asks of Postgres and Redis)", "",
             "| workers | load | req/s | PG transactions | PG table scans | PG rows written | Redis commands "
             "| app CPU ms | PG CPU ms | Redis CPU ms |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, res in blocks:
        for load in ["discovery", "jwks", "client_credentials", "introspection", "refresh", "codeflow"]:
            r = res.get(load) or {}
            pr = r.get("per_request")
            if not pr:
                continue
            rate = r.get("flows_per_s") if load == "codeflow" else r.get("rps")
            per = " (per flow)" if load == "codeflow" else ""
            lines.append(f"| {name} | {load}{per} | {fmt(rate, 1 if per else 0)} "
                         f"| {pr['pg_xact']:.2f} | {pr['pg_scans']:.2f} | {pr['pg_rows_written']:.2f} "
                         f"| {pr['redis_commands']:.2f} | {pr['cpu_server'] * 1000:.3f} | {pr['cpu_pg'] * 1000:.3f} "
                         f"| {pr['cpu_redis'] * 1000:.3f} |")
    return [*lines, ""]


def rss_lines(runs: list[dict[str, Any]], scaling: dict[str, Any] | None) -> list[str]:
    def mib(values: list[int]) -> str:
        return ", ".join(f"{v / 1024:.0f}" for v in values) or "?"

    lines = ["## Memory (VmRSS, MiB)", "",
             "| server | after start and the discovery load | peak during client_credentials | after all loads |",
             "|---|---|---|---|"]
    last = runs[-1]
    # the pids at start are read with the discovery load: without it (--only) nothing to compare
    restarted = [who for who, res in (("ours", last["ours"]), ("1 worker", scaling or {}))
                 if res and "rss_idle_kib" in res
                 and res["rss_idle_kib"].get("pids") != res.get("rss_end_kib", {}).get("pids")]
    for who, res in [("ours, per worker", last["ours"]), ("peer (one process)", last["peer"])] + (
            [("ours, 1 worker", scaling)] if scaling else []):
        lines.append(f"| {who} | {mib(res.get('rss_idle_kib', {}).get('workers', []))} "
                     f"| {mib(res.get('client_credentials', {}).get('rss_peak_kib', []))} "
                     f"| {mib(res.get('rss_end_kib', {}).get('workers', []))} |")
    if restarted:
        lines += ["", f"Worker processes changed during the run ({', '.join(restarted)}): a worker was "
                  "restarted (the supervisor replaces one that died)."]
    return [*lines, ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, help="a copy of the peer setup (server.mjs, npm ci done)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scaling", action="store_true", help="also run ours with one worker, once")
    p.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_PEER_DURATION", "10")))
    p.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_PEER_WARMUP", "2")))
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--codeflow-iterations", type=int, default=200)
    p.add_argument("--refresh-per-run", type=int, default=40_000,
                   help="single-use refresh tokens minted per run (enough for duration x rate)")
    p.add_argument("--only", type=lambda v: v.split(","), default=LOADS, metavar="LOAD[,LOAD]",
                   help=f"run only these loads (of {','.join(LOADS)}); the report then goes to "
                        "bench/results/latest-peer-only.md, the full one stays")
    p.add_argument("--port", type=int, default=8775)
    p.add_argument("--peer-port", type=int, default=9100)
    p.add_argument("--redis-port", type=int, default=6390)
    args = p.parse_args()
    if set(args.only) - set(LOADS):
        raise SystemExit(f"--only: unknown load(s) {sorted(set(args.only) - set(LOADS))}; known: {LOADS}")
    for tool in ("wrk", "node", "redis-server", "redis-cli", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"missing tool: {tool}")

    out = ROOT / "bench" / "results" / f"peer-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    peer = Peer(args, out)
    out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="authserver-sbs."))
    ours = Ours(args, work, out)
    info = machine(peer)
    runs: list[dict[str, Any]] = []
    scaling = None
    try:
        log("seeding ours (database, private Redis, refresh tokens)")
        ours.setup()
        for i in range(args.repeat):
            run: dict[str, Any] = {"peer": {}, "ours": {}}
            order: list[Any] = [peer, ours] if i % 2 == 0 else [ours, peer]
            if args.only == ["refresh"]:  # the peer has no refresh load
                order = [ours]
            for server in order:
                log(f"repeat {i + 1}/{args.repeat}: {server.name}")
                if server is ours:
                    ours.start(args.workers)
                else:
                    peer.start()
                try:
                    run[server.name] = server.loads()
                finally:
                    server.stop()
            runs.append(run)
            (out / "results.json").write_text(json.dumps({"machine": info, "runs": runs}, indent=1))
        if args.scaling:
            log("scaling: ours with 1 worker")
            ours.start(1)
            try:
                scaling = ours.loads()
            finally:
                ours.stop()
    finally:
        peer.stop()
        ours.teardown()
        shutil.rmtree(work, ignore_errors=True)
    (out / "results.json").write_text(json.dumps({"machine": info, "runs": runs, "scaling_1_worker": scaling},
                                                 indent=1))
    text = report(args, info, runs, scaling)
    partial = set(args.only) != set(LOADS)
    (ROOT / "bench" / "results" / f"latest-peer{'-only' if partial else ''}.md").write_text(text)
    (out / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
