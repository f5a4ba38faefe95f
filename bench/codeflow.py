"""Scenario 7: the full authorization code flow, one flow after another.

Each flow uses a fresh cookie jar (a new browser): GET /authorize -> login form
(``username``, ``password``, ``csrf_token``) -> consent form (``csrf_token``,
``decision=allow``) -> redirect to the client with ``code`` -> POST /token with
PKCE. It drives whatever forms the server returns, so it does not depend on the
exact page URLs. ``prompt=consent`` makes the consent page appear on every flow.

Writes JSON: p50/p95 of the whole flow and per step, or ``{"skipped": reason}``
when /authorize is not available. Run the server with cheap Argon2 (m=8,t=1)
so the figure excludes password hashing.

The same client drives another server for a side-by-side figure
(``bench/side_by_side.py``): ``--authorize-path``, ``--scope`` and ``--client-id``,
``--client-secret``, ``--redirect-uri``, ``--username``, ``--password`` replace what
``--state`` gives. A login form is any form with a ``password`` field (its
``username`` or ``login`` field gets the name); a consent form gets ``decision=allow``
when it has a ``decision`` button, else it is submitted as it is. ``requests`` in the
output is the number of requests from the authorization request to the redirect to
the callback (the token request not counted). ``--server-pids`` (a server on this
machine, driven by nothing else) adds the server's CPU per request, in ms per flow:
its processes' ticks read from ``/proc`` before and after each request (a request's
work after its response, such as a mail, counts in the next one).

Every flow is a new ``httpx.Client`` (a new browser: no cookies, a new connection), but
all share one TLS context (:data:`TLS`): httpx builds a new one per client by default,
loading the whole CA bundle, which cost this client 17 ms of CPU per flow, more than
either server spent on the flow, for servers it reaches over plain HTTP.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import ssl
import statistics
import sys
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

#: one TLS context for every flow's client (see the module docstring)
TLS = ssl.create_default_context()


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "fields": {}, "buttons": []})
        elif self.forms and tag in ("input", "button") and a.get("name"):
            kind = a.get("type", "text" if tag == "input" else "submit").lower()
            if kind == "submit":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            elif kind not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))
    return values[k]


def step_of(path: str) -> str:
    for name in ("authorize", "login", "consent", "token"):
        if name in path:
            return name
    return "other"


def cpu_ticks(pids: list[int]) -> int:
    """User + system CPU of these processes, in clock ticks (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total


def one_flow(base: str, state: dict[str, Any], steps: dict[str, list[float]], prompt_consent: bool,
             counts: list[int] | None = None, cpu: dict[str, list[int]] | None = None,
             pids: list[int] | None = None) -> float:
    client = state["code"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": state["redirect_uri"],
        "scope": state.get("scope", "openid profile email"),
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    if prompt_consent:
        params["prompt"] = "consent"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10, verify=TLS) as http:
        req = http.build_request("GET", state.get("authorize_path", "/authorize"), params=params)
        code = None
        sent = 0
        for _ in range(12):
            sent += 1
            t0, c0 = time.perf_counter(), cpu_ticks(pids) if pids else 0
            resp = http.send(req)
            name = step_of(req.url.path)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            if cpu is not None and pids:
                cpu.setdefault(f"{req.method} {req.url.path}", []).append(cpu_ticks(pids) - c0)
            if resp.status_code in (301, 302, 303, 307, 308):
                location = urljoin(str(req.url), resp.headers["location"])
                if location.startswith(state["redirect_uri"]):
                    query = parse_qs(urlsplit(location).query)
                    if "code" not in query:
                        raise RuntimeError(f"redirected to the client without a code: {location}")
                    if query.get("state", [""])[0] != params["state"]:
                        raise RuntimeError("state mismatch")
                    code = query["code"][0]
                    if counts is not None:
                        counts.append(sent)
                    break
                req = http.build_request("GET", location)
                continue
            if resp.status_code != 200:
                raise RuntimeError(f"{req.method} {req.url.path}: HTTP {resp.status_code} {resp.text[:200]}")
            parser = Forms()
            parser.feed(resp.text)
            form = next((f for f in parser.forms if f["method"] == "post"), None)
            if form is None:
                raise RuntimeError(f"no form at {req.url.path}: {resp.text[:200]}")
            data = dict(form["fields"])
            if "password" in data:
                data["login" if "login" in data and "username" not in data else "username"] = state["username"]
                data["password"] = state["user_password"]
            elif any(b[0] == "decision" for b in form["buttons"]):
                data["decision"] = "allow"
            req = http.build_request("POST", urljoin(str(req.url), form["action"] or str(req.url)), data=data)
        if code is None:
            raise RuntimeError("no code after 12 steps")
        t0, c0 = time.perf_counter(), cpu_ticks(pids) if pids else 0
        resp = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": state["redirect_uri"], "code_verifier": verifier},
                         auth=(client["client_id"], client["client_secret"]))
        timings["token"] = time.perf_counter() - t0
        if cpu is not None and pids:
            cpu.setdefault("POST /token", []).append(cpu_ticks(pids) - c0)
        body = resp.json()
        if resp.status_code != 200 or "access_token" not in body or "id_token" not in body:
            raise RuntimeError(f"token: HTTP {resp.status_code} {resp.text[:200]}")
    total = time.perf_counter() - started
    for k, v in timings.items():
        steps.setdefault(k, []).append(v * 1000)
    return total * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--state", help="bench/seed.py's state (the 'code' client and the user)")
    p.add_argument("--authorize-path", default="/authorize")
    p.add_argument("--scope", default="openid profile email")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--redirect-uri")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--no-prompt-consent", action="store_true")
    p.add_argument("--out", required=True)
    p.add_argument("--server-pids", default="",
                   help="comma-separated pids of the server's processes: adds the server's CPU per request "
                        "(ms, mean over the flows; its ticks read before and after each request from /proc)")
    a = p.parse_args()
    pids = [int(x) for x in a.server_pids.split(",") if x]
    state: dict[str, Any] = json.load(open(a.state)) if a.state else {"code": {}}
    state.update({"authorize_path": a.authorize_path, "scope": a.scope})
    for key, value in (("client_id", a.client_id), ("client_secret", a.client_secret)):
        if value:
            state["code"][key] = value
    for key, value in (("redirect_uri", a.redirect_uri), ("username", a.username), ("user_password", a.password)):
        if value:
            state[key] = value

    def write(result: dict[str, Any]) -> None:
        json.dump(result, open(a.out, "w"), indent=2)
        print(json.dumps(result), file=sys.stderr)

    try:
        probe = httpx.get(f"{a.base}{a.authorize_path}", params={"client_id": state["code"]["client_id"]}, timeout=5)
    except httpx.HTTPError as exc:
        return write({"skipped": f"cannot reach /authorize ({type(exc).__name__})"})
    if probe.status_code in (404, 405):
        return write({"skipped": f"/authorize answers HTTP {probe.status_code} (not implemented yet)"})

    try:
        for _ in range(a.warmup):
            one_flow(a.base, state, {}, not a.no_prompt_consent)
    except Exception as exc:
        return write({"skipped": f"flow does not complete: {exc}"})

    steps: dict[str, list[float]] = {}
    totals: list[float] = []
    counts: list[int] = []
    cpu: dict[str, list[int]] = {}
    errors = 0
    started = time.perf_counter()
    for _ in range(a.iterations):
        try:
            totals.append(one_flow(a.base, state, steps, not a.no_prompt_consent, counts, cpu, pids))
        except Exception as exc:
            errors += 1
            print(f"flow failed: {exc}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    if not totals:
        return write({"skipped": "every flow failed", "errors": errors})
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    server_cpu = {k: round(sum(v) * tick_ms / len(totals), 2) for k, v in cpu.items()}
    write({
        **({"server_cpu_ms": server_cpu, "server_cpu_ms_per_flow": round(sum(server_cpu.values()), 2)}
           if pids else {}),
        "iterations": a.iterations, "errors": errors, "flows_per_s": len(totals) / elapsed,
        "requests": max(counts) if counts else None,
        "p50_ms": statistics.median(totals), "p95_ms": pct(totals, 95), "max_ms": max(totals),
        "steps": {k: {"p50_ms": statistics.median(v), "p95_ms": pct(v, 95)} for k, v in steps.items()},
    })


if __name__ == "__main__":
    main()
