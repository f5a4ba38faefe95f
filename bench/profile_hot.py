"""CPU per request on the hot paths, in process: a steadier figure than req/s on a shared machine.

    .venv/bin/python bench/profile_hot.py [--requests 2000] [--rounds 3] [--scenario cc ...]
    .venv/bin/python bench/profile_hot.py --scenario cc --cprofile 30      # top 30 functions
    .venv/bin/python bench/profile_hot.py --sqlite                        # embedded default, no Redis

Builds the app on its own Postgres database (``authserver_prof``, dropped and recreated, dropped at exit;
``PROFILE_HOT_TAG`` changes the name)
and Redis db 14 under the
prefix ``authserver-prof:`` (only those keys are deleted), seeds
clients, a user and refresh tokens through ``bench/seed.py``, then drives the ASGI app
directly (no sockets, one request at a time) and prints, per scenario, the process CPU
time per request (every thread: the event loop and the worker threads) and the wall
time per request. The minimum over ``--rounds`` is reported: noise only ever adds.
``--cprofile N`` runs the work inline on one thread (no thread hand-off) under cProfile
and prints the N most expensive functions by own time. ``--callgrind`` runs the same
under ``valgrind --tool=callgrind`` with instrumentation switched on only around the
measured requests (``callgrind_control -i on|off``) and prints instructions per request:
a count that does not move with the neighbours' load, unlike time. Figures, never
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import hashlib
import json
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
TAG = os.environ.get("PROFILE_HOT_TAG", "prof")  # two runs at once need two tags
PG = f"postgresql+psycopg://postgres@127.0.0.1:5432/authserver_{TAG}"
REDIS = "redis://127.0.0.1:6379/14"
PREFIX = f"authserver-{TAG}:"


def setup_env(work: Path, sqlite: bool, cheap_argon2: bool) -> None:
    for name in [n for n in os.environ if n.startswith("AUTHSERVER_")]:
        del os.environ[name]
    keys = work / "keys"
    keys.mkdir(mode=0o700)
    os.environ.update({
        "AUTHSERVER_KEYS_DIR": str(keys),
        "AUTHSERVER_ISSUER": "http://127.0.0.1:8765",
        "AUTHSERVER_RATE_LIMITS": "off",
        "AUTHSERVER_LOG_LEVEL": "warning",
        "AUTHSERVER_KEY_ACTIVATION_DELAY": "0",
        "AUTHSERVER_SECRET_KEY": secrets.token_urlsafe(48),
    })
    if cheap_argon2:  # the code flow measures the protocol, not Argon2 (as bench/codeflow.py's server)
        os.environ.update({"AUTHSERVER_ARGON2_MEMORY_COST": "8", "AUTHSERVER_ARGON2_TIME_COST": "1"})
    if sqlite:
        os.environ["AUTHSERVER_DATABASE_URL"] = f"sqlite:///{work / 'prof.db'}"
    else:
        os.environ.update({"AUTHSERVER_DATABASE_URL": PG, "AUTHSERVER_REDIS_URL": REDIS,
                           "AUTHSERVER_REDIS_PREFIX": PREFIX})
        admin = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAt", "-c"]
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS authserver_{TAG} WITH (FORCE)"], check=True)
        subprocess.run([*admin, f"CREATE DATABASE authserver_{TAG}"], check=True)
        redis_cleanup()


def redis_cleanup() -> None:
    import redis

    r = redis.Redis.from_url(REDIS)
    keys = list(r.scan_iter(f"{PREFIX}*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i:i + 500])
    r.close()


class Driver:
    """Sends one request at a time straight into the ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8765),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(body)).encode())],
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def toggle(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def scenarios(state: dict[str, Any], refresh_tokens: list[str], access_token: str) -> dict[str, Any]:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cc = {**form, "Authorization": basic(state["cc"]["client_id"], state["cc"]["client_secret"])}
    rt = {**form, "Authorization": basic(state["refresh"]["client_id"], state["refresh"]["client_secret"])}
    pw = {**form, "Authorization": basic(state["password"]["client_id"], state["password"]["client_secret"])}
    tokens = iter(refresh_tokens)
    password_body = (f"grant_type=password&username={state['username']}&password="
                     + state["user_password"].replace(" ", "+") + "&scope=openid").encode()
    return {
        "discovery": lambda: ("GET", "/.well-known/openid-configuration", {}, b""),
        "jwks": lambda: ("GET", "/jwks.json", {}, b""),
        "cc": lambda: ("POST", "/token", cc, b"grant_type=client_credentials&scope=api%3Aread"),
        "introspect": lambda: ("POST", "/introspect", cc,
                               f"token={access_token}&token_type_hint=access_token".encode()),
        "refresh": lambda: ("POST", "/token", rt, f"grant_type=refresh_token&refresh_token={next(tokens)}".encode()),
        "password": lambda: ("POST", "/token", pw, password_body),
    }


class CodeFlow:
    """One whole authorization code flow per call, with a new cookie jar (a new browser):
    ``bench/codeflow.py``'s client on httpx's ASGI transport, so the app's work after a
    response (a new-device mail) is inside the measured call."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        import codeflow  # bench/codeflow.py (bench/ is on sys.path by then)

        self.app, self.state, self.forms = app, state, codeflow.Forms

    async def __call__(self) -> None:
        import httpx

        st, client = self.state, self.state["code"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": st["redirect_uri"],
                  "scope": "openid offline_access", "state": "s", "nonce": "n", "prompt": "consent",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=os.environ["AUTHSERVER_ISSUER"]) as http:
            resp = await http.get("/authorize", params=params)
            for _ in range(8):
                if resp.status_code in (302, 303):
                    location = resp.headers["location"]
                    if location.startswith(st["redirect_uri"]):
                        break
                    resp = await http.get(location)
                    continue
                forms = self.forms()
                forms.feed(resp.text)
                form = next(f for f in forms.forms if f["method"] == "post")
                data = dict(form["fields"])
                if "password" in data:
                    data.update(username=st["username"], password=st["user_password"])
                else:
                    data["decision"] = "allow"
                resp = await http.post(form["action"] or str(resp.url), data=data)
            code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
            resp = await http.post("/token", auth=(client["client_id"], client["client_secret"]), data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": st["redirect_uri"],
                "code_verifier": verifier})
            if resp.status_code != 200:
                raise SystemExit(f"codeflow token: {resp.status_code} {resp.text[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", action="append",
                        help="discovery, jwks, cc, introspect, refresh, password, codeflow (one whole flow "
                             "per request, Argon2 at m=8,t=1 as in bench/codeflow.py; default: all but password "
                             "and codeflow)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--metrics", action="store_true", help="with Prometheus metrics on (multiprocess mode)")
    parser.add_argument("--json", help="append the figures as one JSON line to this file")
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per request under valgrind (one scenario, one round)")
    args = parser.parse_args()
    if args.callgrind and not os.environ.get("PROFILE_HOT_UNDER_VALGRIND"):
        out = Path(tempfile.mkdtemp(prefix="authserver-cg.")) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                        sys.executable, *sys.argv], env={**os.environ, "PROFILE_HOT_UNDER_VALGRIND": "1"},
                       check=True)
        total = next(int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:"))
        per = total / args.requests
        # split off cryptography's own code (RSA signing and verifying): what Python work remains
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out)],
                                   capture_output=True, text=True).stdout
        crypto = sum(int(line.split()[0].replace(",", "")) for line in annotated.splitlines()
                     if "cryptography/hazmat/bindings" in line and line.strip()[:1].isdigit()) / args.requests
        print(f"{','.join(args.scenario or [])}: {per:,.0f} instructions/request ({args.requests} requests), "
              f"{crypto:,.0f} in cryptography (RSA), {per - crypto:,.0f} the rest")
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps({"scenario": args.scenario, "instructions_per_request": round(per),
                                     "crypto": round(crypto)}) + "\n")
        return
    if args.callgrind:
        args.rounds = 1
    wanted = args.scenario or ["discovery", "jwks", "cc", "introspect", "refresh"]
    requests = args.requests if "password" not in wanted else min(args.requests, 60)
    if "codeflow" in wanted:
        if "password" in wanted:
            raise SystemExit("codeflow runs with cheap Argon2, password measures the real one: one at a time")
        requests = min(requests, 200)

    work = Path(tempfile.mkdtemp(prefix="authserver-prof."))
    setup_env(work, args.sqlite, "codeflow" in wanted)
    if args.metrics:  # as `authserver serve` sets it up, before prometheus_client is imported
        (work / "metrics").mkdir()
        os.environ.update({"AUTHSERVER_METRICS_PORT": "9999", "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")})
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    py = sys.executable
    subprocess.run([py, "-c", "from authserver.context import Context; from authserver.db import migrate\n"
                    "from authserver.settings import Settings\n"
                    "c = Context(Settings.from_env()); migrate(c.engine); c.keys.ensure_key(); c.close()"],
                   check=True)
    state_file, refresh_file = work / "state.json", work / "refresh.txt"
    subprocess.run([py, str(ROOT / "bench/seed.py"), "base", "--out", str(state_file)], check=True)
    state = json.loads(state_file.read_text())
    profiled = min(args.requests, 1000) if args.cprofile else 0
    count = args.requests * args.rounds + profiled + 10 if "refresh" in wanted else 0
    if count and not args.sqlite:
        subprocess.run([py, str(ROOT / "bench/seed.py"), "refresh", "--state", str(state_file), "--count",
                        str(count), "--out", str(refresh_file)], check=True)
    refresh_tokens = refresh_file.read_text().split() if refresh_file.exists() else []
    if args.sqlite and "refresh" in wanted:
        wanted.remove("refresh")

    from authserver.app import create_app
    from authserver.context import Context
    from authserver.oauth import bridge
    from authserver.settings import Settings

    ctx = Context(Settings.from_env())
    app = create_app(ctx.settings, context=ctx)
    driver = Driver(app)
    results: dict[str, Any] = {}

    async def run() -> None:
        async with app.router.lifespan_context(app):
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.settings.threadpool_size
            cc_headers = scenarios(state, [], "")["cc"]()
            status, body = await driver.request(*cc_headers)
            assert status == 200, body
            access_token = json.loads(body)["access_token"]
            # the first change poll (at most a second after start) reloads the keys once: not measured
            await asyncio.sleep(1.2)
            await driver.request("GET", "/jwks.json", {}, b"")
            table = scenarios(state, refresh_tokens, access_token)

            def unit_of(name: str) -> Any:
                if name == "codeflow":
                    return CodeFlow(app, state)
                make = table[name]

                async def one() -> None:
                    status, body = await driver.request(*make())
                    if status != 200:
                        raise SystemExit(f"{name}: {status} {body[:300]!r}")
                return one

            for name in wanted:
                unit = unit_of(name)
                for _ in range(min(50, requests)):  # warm-up
                    if name == "refresh":
                        break
                    await unit()
                best_cpu = best_wall = best_kernel = float("inf")
                for _ in range(args.rounds):
                    if args.callgrind:
                        toggle("on")
                    cpu0, wall0, sys0 = time.process_time(), time.perf_counter(), os.times().system
                    for _ in range(requests):
                        await unit()
                    if args.callgrind:
                        toggle("off")
                    cpu = (time.process_time() - cpu0) / requests
                    kernel = (os.times().system - sys0) / requests
                    wall = (time.perf_counter() - wall0) / requests
                    if cpu < best_cpu:
                        best_kernel = kernel
                    best_cpu, best_wall = min(best_cpu, cpu), min(best_wall, wall)
                results[name] = {"cpu_us": round(best_cpu * 1e6, 1), "wall_us": round(best_wall * 1e6, 1),
                                 "kernel_us": round(best_kernel * 1e6, 1)}
                print(f"{name:12s} cpu {best_cpu * 1e6:8.1f} us/request (kernel {best_kernel * 1e6:6.1f})"
                      f"   wall {best_wall * 1e6:8.1f} us/request", flush=True)
            if args.cprofile:
                async def inline(c: Any, fn: Any, *, on_loop: bool = False) -> Any:
                    return bridge._run_in_session(c, fn)

                bridge.call = inline  # type: ignore[assignment]
                for name in wanted:
                    unit = unit_of(name)
                    # PROFILE_TIMER=cpu: process CPU time, so waits on Postgres and Redis count nothing
                    cpu_timer = os.environ.get("PROFILE_TIMER") == "cpu"
                    profile = cProfile.Profile(time.process_time) if cpu_timer else cProfile.Profile()
                    profile.enable()
                    for _ in range(min(requests, 1000)):
                        await unit()
                    profile.disable()
                    print(f"\n== cProfile {name} ({min(requests, 1000)} requests, inline), by own time")
                    order = os.environ.get("PROFILE_SORT", "tottime")  # or cumulative
                    pstats.Stats(profile).sort_stats(order).print_stats(args.cprofile)
                    if os.environ.get("PROFILE_DUMP"):  # for bench/flame_summary.py-style grouping
                        profile.dump_stats(f"{os.environ['PROFILE_DUMP']}.{name}.pstats")

    try:
        asyncio.run(run())
    finally:
        ctx.close()
        if not args.sqlite:
            redis_cleanup()
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAt", "-c",
                            f"DROP DATABASE IF EXISTS authserver_{TAG} WITH (FORCE)"], check=False)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **results}) + "\n")


if __name__ == "__main__":
    main()
