"""One-shot round trip: `edgechat -m hi` against a loopback Workers AI, beside Python importing httpx.

Run alone:  python bench/bench_oneshot.py [--runs 15]

Each run is a fresh process, as a user's shell starts it. The baseline, measured in the same run and
interleaved with it, is an interpreter that only imports httpx: the least any Python HTTP client
pays. The ratio says what edgechat adds on top (settings, history file, the request itself).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.workers_ai import FakeWorkersAI  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{cmd} failed: {result.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with FakeWorkersAI() as fake, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECHAT_", "CLOUDFLARE_"))}
        env |= {"CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
                "EDGECHAT_API_BASE": fake.api_base, "EDGECHAT_DATA_DIR": str(Path(tmp) / "data"),
                "EDGECHAT_CONFIG": str(Path(tmp) / "config.toml")}
        baseline_cmd = [sys.executable, "-c", "import httpx"]
        oneshot_cmd = [sys.executable, "-m", "edgechat_tui", "-m", "hi"]
        timed(baseline_cmd, env), timed(oneshot_cmd, env)  # warm the disk cache
        base, ours = [], []
        for _ in range(args.runs):
            base.append(timed(baseline_cmd, env))
            ours.append(timed(oneshot_cmd, env))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"runs: {args.runs} each, interleaved")
    print(f"baseline  python -c 'import httpx'       median {b * 1000:7.1f} ms")
    print(f"edgechat  -m hi (round trip, loopback)   median {o * 1000:7.1f} ms")
    print(f"ratio edgechat/baseline: {o / b:.2f}x")


if __name__ == "__main__":
    main()
