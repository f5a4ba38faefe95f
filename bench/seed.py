"""Seed the benchmark database (``authserver_bench``) directly through the services.

Run by ``bench/run`` with the same ``AUTHSERVER_*`` environment as the server
(in particular the same ``AUTHSERVER_SECRET_KEY``, so keyed hashes match).

    seed.py base --out STATE.json
        clients and a user; writes their ids and secrets as JSON.
    seed.py refresh --state STATE.json --count N --out FILE
        N distinct, live, single-use refresh tokens (one family each), inserted
        with COPY; the plaintext tokens go to FILE, one a line.
    seed.py big --state STATE.json --users N --refresh M [--max-seconds S]
        bulk rows (COPY) so the hot-path queries run against large tables:
        N users and M refresh tokens with random (unique) hashes. Stops adding
        rows after S seconds (default: no bound) and says how far it got; a
        second run adds only the rows still missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import secrets
import sys
import time
import uuid
from typing import Any

PASSWORD = "correct horse battery staple bench"
REDIRECT_URI = "http://127.0.0.1:8765/bench-callback"


def _context() -> Any:
    from authserver.context import Context
    from authserver.db import import_models
    from authserver.settings import Settings

    import_models()
    return Context(Settings.from_env())


def _raw_conn(ctx: Any) -> Any:
    """A psycopg connection on the same database (for COPY)."""
    import psycopg

    url = ctx.engine.url.set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False))


def cmd_base(args: argparse.Namespace) -> None:
    from authserver.accounts.service import create_user
    from authserver.clients.service import create_client
    from authserver.db import transaction

    ctx = _context()
    state: dict[str, Any] = {"user_password": PASSWORD, "redirect_uri": REDIRECT_URI}
    with transaction(ctx.sessions) as db:
        specs = {
            "cc": dict(client_name="bench client_credentials", redirect_uris=[],
                       grant_types=["client_credentials"], scope="api:read api:write"),
            "refresh": dict(client_name="bench refresh", redirect_uris=[REDIRECT_URI],
                            grant_types=["authorization_code", "refresh_token"],
                            scope="openid profile email offline_access"),
            "password": dict(client_name="bench password", redirect_uris=[],
                             grant_types=["password"], scope="openid profile email"),
            "code": dict(client_name="bench code flow", redirect_uris=[REDIRECT_URI],
                         grant_types=["authorization_code", "refresh_token"],
                         scope="openid profile email offline_access"),
        }
        for name, spec in specs.items():
            new = create_client(db, ctx.box, **spec)
            state[name] = {"client_id": new.client.client_id, "client_secret": new.client_secret}
        user = create_user(db, ctx.passwords, username="benchuser", email="benchuser@example.com",
                           password=PASSWORD, name="Bench User")
        state["user_id"] = user.id
        state["username"] = "benchuser"
    ctx.close()
    with open(args.out, "w") as fh:
        json.dump(state, fh, indent=2)
    print(f"seeded 4 clients and user benchuser -> {args.out}", file=sys.stderr)


def _ts(value: dt.datetime) -> str:
    # UTCDateTime stores naive UTC
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


REFRESH_COLUMNS = ("token_hash, family_id, client_id, user_id, scope, auth_time, amr, acr, sid, "
                   "created_at, expires_at, family_expires_at")


def cmd_refresh(args: argparse.Namespace) -> None:
    state = json.load(open(args.state))
    ctx = _context()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    created, expires = _ts(now), _ts(now + dt.timedelta(days=13))
    fam_expires = _ts(now + dt.timedelta(days=89))
    client_id, user_id = state["refresh"]["client_id"], state["user_id"]
    auth_time = int(time.time())
    started = time.perf_counter()
    with _raw_conn(ctx) as conn, open(args.out, "w") as out:
        with conn.cursor() as cur, cur.copy(f"COPY refresh_tokens ({REFRESH_COLUMNS}) FROM STDIN") as copy:
            for _ in range(args.count):
                token = secrets.token_urlsafe(32)
                out.write(token + "\n")
                copy.write_row((ctx.box.keyed_hash(token), str(uuid.uuid4()), client_id, user_id,
                                "openid offline_access", auth_time, '["pwd"]',
                                "urn:authserver:acr:pwd", None, created, expires, fam_expires))
        conn.commit()
    ctx.close()
    print(f"minted {args.count} refresh tokens in {time.perf_counter() - started:.1f}s -> {args.out}",
          file=sys.stderr)


def _chunks(total: int, size: int = 200_000) -> Any:
    done = 0
    while done < total:
        n = min(size, total - done)
        yield done, n
        done += n


def _out_of_time(args: argparse.Namespace, started: float) -> bool:
    if args.max_seconds and time.perf_counter() - started > args.max_seconds:
        print(f"  stopped at the time bound ({args.max_seconds}s): fewer rows than asked", file=sys.stderr)
        return True
    return False


def cmd_big(args: argparse.Namespace) -> None:
    """COPY bulk rows; text is generated in big buffers (random hex hashes)."""
    state = json.load(open(args.state))
    ctx = _context()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    created = _ts(now)
    expires, fam_expires = _ts(now + dt.timedelta(days=13)), _ts(now + dt.timedelta(days=89))
    # a real (but cheap, m=8) hash: nobody logs in as these users
    dummy_hash = "$argon2id$v=19$m=8,t=1,p=1$YmVuY2hiZW5jaA$c2VlZGVkLW5vdC1hLXJlYWwtaGFzaA"
    started = time.perf_counter()
    user_ids: list[str] = []
    with _raw_conn(ctx) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            have_users = cur.fetchone()[0]
            want_users = max(0, args.users - have_users)
            for offset, n in _chunks(want_users):
                if _out_of_time(args, started):
                    break
                buf = io.StringIO()
                for i in range(offset, offset + n):
                    uid = str(uuid.uuid4())
                    user_ids.append(uid)
                    buf.write(f"{uid}\tbig{i:08d}\tbig{i:08d}@example.com\tt\t{dummy_hash}\t\\N\tf\t"
                              f"{created}\t{created}\t{created}\n")
                with cur.copy("COPY users (id, username, email, email_verified, password_hash, name, "
                              "disabled, created_at, updated_at, password_changed_at) FROM STDIN") as copy:
                    copy.write(buf.getvalue())
                conn.commit()
                print(f"  users {offset + n}/{want_users} ({time.perf_counter() - started:.0f}s)",
                      file=sys.stderr)
            if not user_ids:
                cur.execute("SELECT id FROM users LIMIT 100000")
                user_ids = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT count(*) FROM refresh_tokens")
            have_rt = cur.fetchone()[0]
            want_rt = max(0, args.refresh - have_rt)
            client_id = state["refresh"]["client_id"]
            nusers = len(user_ids)
            for offset, n in _chunks(want_rt, 500_000):
                if _out_of_time(args, started):
                    break
                buf = io.StringIO()
                hexes = os.urandom(32 * n).hex()
                fams = os.urandom(16 * n).hex()
                for j in range(n):
                    h = hexes[64 * j:64 * j + 64]
                    f = fams[32 * j:32 * j + 32]
                    fam = f"{f[:8]}-{f[8:12]}-{f[12:16]}-{f[16:20]}-{f[20:]}"
                    # mostly rotated (like a real table), some live
                    rotated = created if j % 4 else "\\N"
                    buf.write(f"{h}\t{fam}\t{client_id}\t{user_ids[(offset + j) % nusers]}\t"
                              f"openid offline_access\t\\N\t[]\t\\N\t\\N\t{created}\t{expires}\t"
                              f"{fam_expires}\t{rotated}\n")
                with cur.copy(f"COPY refresh_tokens ({REFRESH_COLUMNS}, rotated_at) FROM STDIN") as copy:
                    copy.write(buf.getvalue())
                conn.commit()
                print(f"  refresh_tokens {offset + n}/{want_rt} ({time.perf_counter() - started:.0f}s)",
                      file=sys.stderr)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE users")
            cur.execute("VACUUM ANALYZE refresh_tokens")
    ctx.close()
    print(f"big seed done in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("base")
    p.add_argument("--out", required=True)
    p = sub.add_parser("refresh")
    p.add_argument("--state", required=True)
    p.add_argument("--count", type=int, default=150_000)
    p.add_argument("--out", required=True)
    p = sub.add_parser("big")
    p.add_argument("--state", required=True)
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--refresh", type=int, default=10_000_000)
    p.add_argument("--max-seconds", type=int, default=0, help="stop adding rows after this long (0: no bound)")
    args = parser.parse_args()
    {"base": cmd_base, "refresh": cmd_refresh, "big": cmd_big}[args.cmd](args)


if __name__ == "__main__":
    main()
