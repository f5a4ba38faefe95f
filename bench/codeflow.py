"""Scenario 7: the full authorization code flow, one flow after another.

Each flow uses a fresh cookie jar (a new browser): GET /authorize -> login form
(``username``, ``password``, ``csrf_token``) -> consent form (``csrf_token``,
``decision=allow``) -> redirect to the client with ``code`` -> POST /token with
PKCE. It drives whatever forms the server returns, so it does not depend on the
exact page URLs. ``prompt=consent`` makes the consent page appear on every flow.

Writes JSON: p50/p95 of the whole flow and per step, or ``{"skipped": reason}``
when /authorize is not available. Run the server with cheap Argon2 (m=8,t=1)
so the figure excludes password hashing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import statistics
import sys
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


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


def one_flow(base: str, state: dict[str, Any], steps: dict[str, list[float]], prompt_consent: bool) -> float:
    client = state["code"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": state["redirect_uri"],
        "scope": "openid profile email", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    if prompt_consent:
        params["prompt"] = "consent"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as http:
        req = http.build_request("GET", "/authorize", params=params)
        code = None
        for _ in range(12):
            t0 = time.perf_counter()
            resp = http.send(req)
            name = step_of(req.url.path)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            if resp.status_code in (301, 302, 303, 307, 308):
                location = urljoin(str(req.url), resp.headers["location"])
                if location.startswith(state["redirect_uri"]):
                    query = parse_qs(urlsplit(location).query)
                    if "code" not in query:
                        raise RuntimeError(f"redirected to the client without a code: {location}")
                    if query.get("state", [""])[0] != params["state"]:
                        raise RuntimeError("state mismatch")
                    code = query["code"][0]
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
            if "username" in data or "password" in data:
                data["username"] = state["username"]
                data["password"] = state["user_password"]
            else:
                allow = next((b for b in form["buttons"] if b[0] == "decision" and b[1] == "allow"), None)
                data["decision"] = "allow" if allow is None else allow[1]
            req = http.build_request("POST", urljoin(str(req.url), form["action"] or str(req.url)), data=data)
        if code is None:
            raise RuntimeError("no code after 12 steps")
        t0 = time.perf_counter()
        resp = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                         "redirect_uri": state["redirect_uri"], "code_verifier": verifier},
                         auth=(client["client_id"], client["client_secret"]))
        timings["token"] = time.perf_counter() - t0
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
    p.add_argument("--state", required=True)
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--no-prompt-consent", action="store_true")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    state = json.load(open(a.state))

    def write(result: dict[str, Any]) -> None:
        json.dump(result, open(a.out, "w"), indent=2)
        print(json.dumps(result), file=sys.stderr)

    try:
        probe = httpx.get(f"{a.base}/authorize", params={"client_id": state["code"]["client_id"]}, timeout=5)
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
    errors = 0
    started = time.perf_counter()
    for _ in range(a.iterations):
        try:
            totals.append(one_flow(a.base, state, steps, not a.no_prompt_consent))
        except Exception as exc:
            errors += 1
            print(f"flow failed: {exc}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    if not totals:
        return write({"skipped": "every flow failed", "errors": errors})
    write({
        "iterations": a.iterations, "errors": errors, "flows_per_s": len(totals) / elapsed,
        "p50_ms": statistics.median(totals), "p95_ms": pct(totals, 95), "max_ms": max(totals),
        "steps": {k: {"p50_ms": statistics.median(v), "p95_ms": pct(v, 95)} for k, v in steps.items()},
    })


if __name__ == "__main__":
    main()
