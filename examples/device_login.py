"""A command-line client signing in with the device authorization grant (RFC 8628).

It reads the server's discovery document, asks the device authorization endpoint for
a code, prints where to go and what to type (like a TV or a CLI would), then polls the
token endpoint as §3.4-§3.5 say: every ``interval`` seconds, 5 seconds more after each
``slow_down``, until tokens arrive, the user denies (``access_denied``) or the code
expires (``expired_token``). On success it prints the token response as one JSON line.

Run it against a server with a client registered for the grant::

    authserver clients create --name "My CLI" --public \\
        --grant-type urn:ietf:params:oauth:grant-type:device_code refresh_token \\
        --scope "openid profile offline_access" --json
    python examples/device_login.py --issuer http://127.0.0.1:8000 --client-id "$CLIENT_ID" \\
        --scope "openid profile offline_access"

A confidential client adds ``--client-secret`` (sent with HTTP Basic). Exit status: 0 with
tokens, 1 when denied or expired, 2 for any other error. Needs ``httpx``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import httpx

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret")
    parser.add_argument("--scope", default="openid")
    args = parser.parse_args(argv)

    auth = httpx.BasicAuth(args.client_id, args.client_secret) if args.client_secret else None
    client_params = {} if auth else {"client_id": args.client_id}
    with httpx.Client(timeout=10, auth=auth) as http:
        meta = http.get(f"{args.issuer}/.well-known/openid-configuration").json()
        if meta.get("issuer") != args.issuer:
            print("error: the discovery document names another issuer", file=sys.stderr)
            return 2
        response = http.post(meta["device_authorization_endpoint"], data={**client_params, "scope": args.scope})
        if response.status_code != 200:
            print(f"error: device authorization failed: {response.text}", file=sys.stderr)
            return 2
        grant = response.json()
        print(f"To sign in, open {grant['verification_uri']} and enter the code {grant['user_code']}", flush=True)
        print(f"(or open {grant['verification_uri_complete']})", flush=True)

        interval = int(grant.get("interval", 5))
        deadline = time.monotonic() + int(grant["expires_in"])
        while time.monotonic() < deadline:
            time.sleep(interval)
            response = http.post(meta["token_endpoint"], data={
                **client_params, "grant_type": GRANT_TYPE, "device_code": grant["device_code"]})
            body = response.json()
            if response.status_code == 200:
                print(json.dumps(body), flush=True)
                return 0
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5  # RFC 8628 §3.5, for this and every later request
                continue
            print(f"error: {error}", file=sys.stderr, flush=True)
            return 1 if error in ("access_denied", "expired_token") else 2
    print("error: expired_token", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
