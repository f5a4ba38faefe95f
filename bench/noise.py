"""CPU used by *other* processes during a scenario (the machine is shared; a busy
neighbour, e.g. a test run, lowers the figures). Postgres, Redis, wrk and the
server under test are not counted.

    noise.py snap FILE           # before
    noise.py diff FILE NAME OUT  # after: appends {"name", "other_cpu_pct", "top"} to OUT (JSON lines)
"""

from __future__ import annotations

import json
import os
import sys
import time

EXCLUDE = ("postgres", "redis-server", "wrk", "authserver", "uvicorn", "py-spy")
HZ = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[str, object]:
    procs: dict[str, list] = {}
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        name = cmd or comm
        if any(x in comm or x in name.split(" ")[0] or f"bin/{x}" in name for x in EXCLUDE):
            continue
        procs[pid] = [ticks, name[:80]]
    return {"t": time.time(), "procs": procs}


def main() -> None:
    if sys.argv[1] == "snap":
        json.dump(snapshot(), open(sys.argv[2], "w"))
        return
    before, after = json.load(open(sys.argv[2])), snapshot()
    elapsed = after["t"] - before["t"]
    used: dict[str, float] = {}
    for pid, (ticks, name) in after["procs"].items():
        prev = before["procs"].get(pid, [0, name])[0]
        if ticks - prev > 0:
            used[name] = used.get(name, 0) + (ticks - prev) / HZ
    total = sum(used.values())
    top = sorted(used.items(), key=lambda kv: -kv[1])[:3]
    rec = {"name": sys.argv[3], "other_cpu_pct": round(100 * total / elapsed),
           "top": [f"{n} ({100 * s / elapsed:.0f}%)" for n, s in top if s / elapsed >= 0.02]}
    with open(sys.argv[4], "a") as fh:
        fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
