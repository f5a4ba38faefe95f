"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile: the functions
with the highest inclusive and self share of samples.

    py-spy record --format raw -o bench/results/profile.raw --pid PID -d 10
    python bench/flame_summary.py bench/results/profile.raw [--top 25] [--match authserver]
"""

from __future__ import annotations

import argparse
import collections


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="", help="only list frames containing this text")
    a = p.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    total = 0
    for line in open(a.path):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        for f in set(frames):
            inclusive[f] += n
        self_[frames[-1]] += n
    print(f"{total} samples")
    print("\n-- inclusive")
    for f, n in inclusive.most_common():
        if a.match in f:
            print(f"{100 * n / total:6.1f}%  {f}")
            a.top -= 1
            if a.top <= 0:
                break
    print("\n-- self")
    for f, n in self_.most_common(25):
        print(f"{100 * n / total:6.1f}%  {f}")


if __name__ == "__main__":
    main()
