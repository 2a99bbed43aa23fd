"""Summarize a py-spy speedscope profile: the functions where the time goes.

    python -m bench.hotspots bench/results/profile-traces-grpc-r1.speedscope.json [--top 25]

Prints, per function, the share of sampled time where it is on top of the
stack (self) and anywhere on the stack (total), over all sampled threads.
py-spy sees Python threads only; with ``--native`` (see ``bench.run
--profile-native``) the C frames of gRPC core and upb show up too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def _frame(f: dict[str, object], lines: bool) -> str:
    where = Path(str(f.get("file", "?"))).name
    if lines:
        where += f":{f.get('line', '?')}"
    return f"{f['name']} ({where})"


def summarize(path: Path, lines: bool = False) -> tuple[float, Counter[str], Counter[str]]:
    doc = json.loads(path.read_text())
    frames = [_frame(f, lines) for f in doc["shared"]["frames"]]
    total = 0.0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for profile in doc["profiles"]:
        if profile.get("type") != "sampled":
            continue
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            if stack:
                self_time[frames[stack[-1]]] += weight
            for name in {frames[i] for i in stack}:
                inclusive[name] += weight
    return total, self_time, inclusive


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--lines", action="store_true", help="one entry per source line, not per function")
    a = p.parse_args(argv)
    total, self_time, inclusive = summarize(a.profile, a.lines)
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total:.1f} s sampled (all threads)\n\nself %  function")
    for name, w in self_time.most_common(a.top):
        print(f"{w / total * 100:6.1f}  {name}")
    print("\ntotal %  function")
    for name, w in inclusive.most_common(a.top):
        print(f"{w / total * 100:6.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
