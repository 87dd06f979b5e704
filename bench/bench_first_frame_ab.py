"""The conversation on screen at once, before and after: bench_first_frame for two trees in one run.

Run alone: ``python bench/bench_first_frame_ab.py BEFORE [--after DIR] [--runs N]``, where BEFORE is a
git commit of this repository (checked out into a temporary directory with ``git archive``) and the
after tree is this one by default.

Each round starts the minimal Textual app (the baseline), then each profile (long: 10,000 messages,
short: 4) with one tree and the other, in an order that alternates from round to round; the first
round fills the bytecode cache (and the render cache) and is not counted. Both trees read the same
data directory. Prints, per profile and tree, the medians of the first frame, the conversation on
screen and "ready", their ratios to the baseline's median, the median of each run's ratio to its
round's baseline (paired) and the median of after/before paired by round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_first_frame import SHORT, baseline_once, edgechat_once
from bench_history import write_history
from bench_startup import ROOT, edgechat_env


def checkout(commit: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="a commit of this repository")
    parser.add_argument("--after", type=Path, default=ROOT, help="the tree to compare (default: this one)")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    profiles = {"long": 10_000, "short": SHORT}
    results: dict[tuple[str, str], list[tuple[tuple[float, float, float], float]]] = {
        (tree, user): [] for tree in ("before", "after") for user in profiles}
    baseline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="edgechat-first-frame-ab-") as tmp:
        trees = {"before": checkout(args.before, Path(tmp) / "before"), "after": args.after.resolve()}
        data_dir = Path(tmp) / "data"
        for user, messages in profiles.items():
            write_history(data_dir, user, messages)
        with edgechat_env(data_dir) as (env, _fake):
            envs = {name: env | {"PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree)])}
                    for name, tree in trees.items()}
            for run in range(args.runs + 1):
                base = baseline_once()
                order = ("before", "after") if run % 2 else ("after", "before")
                outcomes = {(tree, user): edgechat_once(envs[tree], user, messages)
                            for user, messages in profiles.items() for tree in order}
                if run:
                    baseline.append(base)
                    for key, outcome in outcomes.items():
                        results[key].append((outcome, base))

    base = statistics.median(baseline)
    print(f"Before {args.before} / after {args.after}; baseline (minimal Textual app) first frame: "
          f"median {base * 1000:.1f} ms (n={len(baseline)})")
    for user in profiles:
        for tree in ("before", "after"):
            rows = results[(tree, user)]
            first, shown, ready = (statistics.median(row[0][i] for row in rows) for i in range(3))
            paired = statistics.median(row[0][1] / row[1] for row in rows)
            print(f"  {user:5} {tree:6}: first frame {first * 1000:6.1f} ms ({first / base:.2f}x), "
                  f"conversation on screen {shown * 1000:6.1f} ms ({shown / base:.2f}x; "
                  f"paired by run {paired:.2f}x), ready {ready * 1000:6.1f} ms ({ready / base:.2f}x)")
        pairs = zip(results[("before", user)], results[("after", user)], strict=True)
        ratio = statistics.median(after[0][1] / before[0][1] for before, after in pairs)
        print(f"  {user:5} conversation on screen, after / before (paired by round): {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
