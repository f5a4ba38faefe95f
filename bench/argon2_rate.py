"""Raw Argon2id verify rate on one core (run under ``taskset -c 0``), the ceiling
for the password grant. Prints one JSON line: {"argon2_verify_per_s": ...}."""

from __future__ import annotations

import argparse
import json
import time

import argon2


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--memory-cost", type=int, default=19456)
    p.add_argument("--time-cost", type=int, default=2)
    p.add_argument("--parallelism", type=int, default=1)
    a = p.parse_args()
    hasher = argon2.PasswordHasher(time_cost=a.time_cost, memory_cost=a.memory_cost,
                                   parallelism=a.parallelism, type=argon2.Type.ID)
    password = "correct horse battery staple bench"
    stored = hasher.hash(password)
    hasher.verify(stored, password)  # warm up
    n = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < a.seconds:
        hasher.verify(stored, password)
        n += 1
    print(json.dumps({"argon2_verify_per_s": n / elapsed, "verifies": n, "seconds": elapsed,
                      "params": f"m={a.memory_cost},t={a.time_cost},p={a.parallelism}"}))


if __name__ == "__main__":
    main()
