"""``authserver clients create|update|show`` and the DPoP flag (RFC 9449 §5.2)."""

from __future__ import annotations

import json

from authserver.clients.models import Client
from authserver.db import transaction


def test_dpop_bound_access_tokens_is_set_shown_and_cleared(run, ctx):
    status, out, err = run("clients", "create", "--name", "Bound", "--grant-type", "client_credentials",
                           "--scope", "api:read", "--dpop-bound-access-tokens", "--json")
    assert status == 0, err
    client_id = json.loads(out)["client_id"]
    with transaction(ctx.sessions) as db:
        assert db.get(Client, client_id).dpop_bound_access_tokens is True
    status, out, err = run("clients", "show", "--json", "--", client_id)
    assert status == 0 and json.loads(out)["dpop_bound_access_tokens"] is True
    status, _, err = run("clients", "update", "--no-dpop-bound-access-tokens", "--", client_id)
    assert status == 0, err
    with transaction(ctx.sessions) as db:
        assert db.get(Client, client_id).dpop_bound_access_tokens is False
