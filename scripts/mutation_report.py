"""Helper of ``scripts/mutation``: file selection, the CI configuration and the summary.

Reads mutmut 3's per-file results (``mutants/<file>.meta``, JSON with
``exit_code_by_key``) and prints killed / survived / no tests / timeout and the
score per file. A survivor inside a *security check* (``SECURITY_CHECKS``) fails
the run unless ``docs/mutation.md`` names it as accepted (in backquotes).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEP = "ǁ"  # mutmut's separator in the mangled names of methods

# The functions that decide who gets what: a surviving mutant in one of them is a
# missing test, not a matter of taste. Module-level functions are "name", methods
# "Class.name". The --ci pass mutates exactly these.
SECURITY_CHECKS: dict[str, list[str]] = {
    "authserver/oauth/grants.py": [
        "_s256",
        "IssueMixin.authenticate_token_endpoint_client",
        "IssueMixin.validate_requested_scope",
        "S256CodeChallenge.validate_code_challenge",
        "S256CodeChallenge.validate_code_verifier",
        "AuthorizationCodeGrant.query_authorization_code",
        "AuthorizationCodeGrant.authenticate_user",
        "RefreshTokenGrant.authenticate_refresh_token",
        "RefreshTokenGrant.validate_token_request",
        "RefreshTokenGrant._reuse_detected",
        "PasswordGrant.authenticate_user",
        "PasswordGrant.validate_token_request",
    ],
    "authserver/oauth/server.py": [
        "Server.handle_error_response",
        "Server.issue_tokens",
        "Server.token_response",
        "Server.authenticate_client",
        "Server._introspection_body",
        "Server._live_refresh_token",
        "Server.revoke",
    ],
    "authserver/tokens/service.py": [
        "revoke_access_token",
        "invalidate_subject",
        "invalidate_client",
        "revoke_family",
        "revoke_user_families",
        "revoke_code_issue",
        "claim_code",
        "record_code_issue",
        "claim_live_refresh_token",
        "release_refresh_token",
    ],
    # whether a sign-in needs a second factor (asked once per request)
    "authserver/accounts/mfa.py": [
        "has_mfa",
        "remember_mfa",
        "forget_mfa",
    ],
    "authserver/security/passwords.py": [
        "PasswordHasher.verify",
        "PasswordHasher.needs_rehash",
        "_is_trivial",
        "_derived_from",
        "validate_password",
    ],
    "authserver/security/throttle.py": [
        "Lockout.check",
        "Lockout.register_failure",
        "Lockout._count",
        "Lockout.register_success",
        "RateLimiter.check",
        "MemoryStore.hit",
        "MemoryStore.locked_for",
    ],
    # RFC 9449: the proof checks, the replay cache, the nonces and the key binding at a resource
    "authserver/oauth/dpop.py": [
        "normalize_uri",
        "ReplayCache.first_use",
        "ReplayCache._first_use_here",
        "DPoP._nonce_ok",
        "DPoP.check",
        "DPoP._check",
        "DPoP._key",
        "_modulus_bits",
        "presented",
        "check_presented",
    ],
    # requests to client-chosen addresses (jwks_uri, backchannel_logout_uri): no private
    # destination unless allowed, the request pinned to the checked address, and TLS
    # naming the host (through a proxy's tunnel too)
    "authserver/security/outbound.py": [
        "is_public",
        "resolve",
        "proxy_for",
        "_is_loopback",
        "_unmapped",
        "Destination.client",
        "Destination.request",
        "_HostTLS.naming",
        "_HostTLS.wrap_socket",
        "_HostTLS.wrap_bio",
    ],
    # WebAuthn: the relying party, the challenge, the owner, the user handle, user
    # verification and the signature counter
    "authserver/passkeys/service.py": [
        "RelyingParty.for_issuer",
        "get",
        "finish_registration",
        "authentication_options",
        "finish_authentication",
        "_check_challenge",
    ],
}

# the tests that guard SECURITY_CHECKS: the --ci pass runs only these
CI_TESTS = [
    "tests/oauth/test_grants.py",
    "tests/oauth/test_expiry_and_disabled.py",
    "tests/oauth/test_guards.py",
    "tests/oauth/test_review_findings.py",
    "tests/accounts/test_authenticate.py",
    "tests/accounts/test_has_mfa.py",
    "tests/endpoints/test_authorize.py",
    "tests/tokens/test_service.py",
    "tests/tokens/test_revocation.py",
    "tests/endpoints/test_token.py",
    "tests/endpoints/test_introspect.py",
    "tests/endpoints/test_revoke.py",
    "tests/security/test_passwords.py",
    "tests/security/test_throttle.py",
    "tests/security/test_lockout_race.py",
    "tests/dpop/test_dpop_unit.py",
    "tests/dpop/test_dpop.py",
    "tests/passkeys/test_service.py",
    "tests/passkeys/test_pages.py",
    "tests/security/test_outbound.py",
]

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed",
          None: "not checked"}


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def mangled(path: str, function: str) -> str:
    cls, _, name = function.rpartition(".")
    return f"{module_of(path)}.x{SEP}{cls}{SEP}{name}" if cls else f"{module_of(path)}.x_{function}"


def is_security_check(mutant: str) -> bool:
    base = mutant.partition("__mutmut_")[0]
    return any(base == mangled(path, fn) for path, fns in SECURITY_CHECKS.items() for fn in fns)


def mutmut_config(pyproject: Path = ROOT / "pyproject.toml") -> dict:
    return dict(tomllib.loads(pyproject.read_text())["tool"]["mutmut"])


def mutable(path: str) -> bool:
    patterns = mutmut_config()["only_mutate"]
    return path.endswith(".py") and (ROOT / path).is_file() and any(fnmatch.fnmatch(path, p) for p in patterns)


def ci_pyproject(text: str) -> str:
    """The project's pyproject.toml with [tool.mutmut] narrowed to the CI pass."""
    only = "only_mutate = [\n" + "".join(f'    "{p}",\n' for p in SECURITY_CHECKS) + "]"
    text, n = re.subn(r"^only_mutate = \[.*?^\]", only, text, count=1, flags=re.S | re.M)
    selection = "pytest_add_cli_args_test_selection = " + json.dumps([*CI_TESTS, "-k", "not postgres"])
    text, m = re.subn(r"^pytest_add_cli_args_test_selection = \[.*?\]$", selection, text, count=1,
                      flags=re.S | re.M)  # on one line or several
    if n != 1 or m != 1:
        sys.exit("mutation: cannot rewrite [tool.mutmut] for the CI pass")
    return text


def _doc() -> str:
    doc = ROOT / "docs" / "mutation.md"
    return doc.read_text() if doc.exists() else ""


def accepted() -> set[str]:
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", _doc()))


def equivalent() -> set[str]:
    """The accepted survivors whose reason says no behaviour can tell them apart from the
    code (rows of docs/mutation.md's table whose reason starts "Equivalent", "Unreachable"
    or "Redundant"): the usual mutation score leaves them out of the mutants tried."""
    rows = re.findall(r"^\| `([\w.ǁ]+__mutmut_\d+)` \|[^|]*\| (\w+)", _doc(), re.M)
    return {name for name, reason in rows if reason in ("Equivalent", "Unreachable", "Redundant")}


def load(root: Path, path: str) -> dict[str, int | None]:
    meta = root / "mutants" / f"{path}.meta"
    for _ in range(5):  # mutmut rewrites the file while it runs
        try:
            return dict(json.loads(meta.read_text())["exit_code_by_key"])
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError:
            time.sleep(0.2)
    sys.exit(f"mutation: cannot read {meta}")


def summary(root: Path, files: list[str], ci: bool) -> int:
    if not files:
        files = sorted(str(p.relative_to(root / "mutants"))[: -len(".meta")]
                       for p in (root / "mutants").rglob("*.py.meta"))
    ok, same = accepted(), equivalent()
    total: Counter[str] = Counter()
    equivalents = 0
    bad: list[str] = []
    print(f"{'file':<44} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'score':>7}")
    for path in files:
        results = load(root, path)
        if ci:
            results = {k: v for k, v in results.items() if is_security_check(k)}
        counts = Counter(STATUS.get(code, "suspicious") for code in results.values())
        total.update(counts)
        if counts["not checked"] == sum(counts.values()):
            continue  # nothing tried in this file yet
        print(f"{path:<44} {counts['killed']:>7} {counts['survived']:>9} {counts['no tests']:>9} "
              f"{counts['timeout']:>8} {score(counts):>7}")
        bad += [k for k, v in results.items()
                if STATUS.get(v) in ("survived", "no tests") and is_security_check(k) and k not in ok]
        equivalents += sum(1 for k, v in results.items() if STATUS.get(v) == "survived" and k in same)
    print(f"{'total':<44} {total['killed']:>7} {total['survived']:>9} {total['no tests']:>9} "
          f"{total['timeout']:>8} {score(total):>7}")
    if equivalents:
        print(f"{'without ' + str(equivalents) + ' equivalent survivor(s) (docs/mutation.md)':<44} "
              f"{'':>7} {total['survived'] - equivalents:>9} {'':>9} {'':>8} "
              f"{score(total - Counter(survived=equivalents)):>7}")
    others = {k: n for k, n in total.items() if k not in ("killed", "survived", "no tests", "timeout")}
    if others:
        print("also:", ", ".join(f"{k} {n}" for k, n in sorted(others.items())))
    if bad:
        print(f"\n{len(bad)} surviving mutant(s) in security checks, not accepted in docs/mutation.md:")
        for name in sorted(bad):
            print(f"  {name}    (.venv/bin/mutmut show '{name}')")
        return 1
    return 0


def score(counts: Counter[str]) -> str:
    tried = counts["killed"] + counts["timeout"] + counts["survived"] + counts["no tests"]
    return f"{100 * (counts['killed'] + counts['timeout']) / tried:.1f}%" if tried else "-"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutable", action="store_true", help="filter paths on stdin to the mutated ones")
    parser.add_argument("--globs", action="store_true", help="paths on stdin to mutmut name patterns")
    parser.add_argument("--ci-pyproject", type=Path)
    parser.add_argument("--ci-files", action="store_true")
    parser.add_argument("--ci-globs", action="store_true")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--ci", action="store_true")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.mutable:
        print("\n".join(p for p in sys.stdin.read().split() if mutable(p)))
    elif args.globs:
        print("\n".join(f"{module_of(p)}.*" for p in sys.stdin.read().split()))
    elif args.ci_pyproject:
        sys.stdout.write(ci_pyproject(args.ci_pyproject.read_text()))
    elif args.ci_files:
        print("\n".join(SECURITY_CHECKS))
    elif args.ci_globs:
        # a fixed sample: the mutants whose number ends in 0 or 5 (one in five);
        # MUTATION_SAMPLE="*" tries every mutant of the security checks
        sample = os.environ.get("MUTATION_SAMPLE", "*[05]")
        print("\n".join(f"{mangled(p, f)}__mutmut_{sample}" for p, fns in SECURITY_CHECKS.items() for f in fns))
    elif args.summary:
        return summary(args.root, args.files, args.ci)
    return 0


if __name__ == "__main__":
    sys.exit(main())
