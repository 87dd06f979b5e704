"""One-shot round trip: `edgechat -m hi` against a loopback Workers AI, beside Python importing httpx.

Run alone:  python bench/bench_oneshot.py [--runs 15] [--before-src DIR]

Each run is a fresh process, as a user's shell starts it. The baseline, measured in the same run and
interleaved with it, is an interpreter that only imports httpx: the least any Python HTTP client
pays. The ratio says what edgechat adds on top (settings, history file, the request itself).

Then the same at a terminal (a pty, 100x30): start to the reply's first byte, and start to exit,
for ``-m hi --raw`` (plain text, as every one-shot printed before Markdown rendering), ``-m hi``
(Markdown rendered block by block; Rich imported in a thread) and, with ``--before-src``, the code of
an older checkout (its ``src`` folder) run the same way: the before/after of the rendering.
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


def in_pty(cmd: list[str], env: dict[str, str], marker: bytes) -> tuple[float, float]:
    """Seconds from spawning ``cmd`` on a new pty to ``marker`` in its output, and to its exit."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=dict(env, TERM="xterm-256color"), stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    seen, first = b"", None
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            raise SystemExit(f"{cmd}: no output in 10 s")
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        seen += chunk
        if first is None and marker in seen:
            first = time.perf_counter() - start
    proc.wait()
    end = time.perf_counter() - start
    os.close(master)
    if proc.returncode != 0 or first is None:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {seen[-300:]!r}")
    return first, end


def terminal_figures(env: dict[str, str], runs: int, before_src: str | None) -> None:
    cases = {
        "python -c 'import httpx; print(...)'": ([sys.executable, "-c", "import httpx; print('You')"], env),
        "edgechat -m hi --raw (plain)": ([sys.executable, "-m", "edgechat_tui", "-m", "hi", "--raw"], env),
        "edgechat -m hi (Markdown)": ([sys.executable, "-m", "edgechat_tui", "-m", "hi"], env),
    }
    if before_src:
        old_env = dict(env, PYTHONPATH=os.pathsep.join([str(Path(before_src).resolve()), str(ROOT)]))
        cases["before: edgechat -m hi"] = ([sys.executable, "-m", "edgechat_tui", "-m", "hi"], old_env)
    for cmd, case_env in cases.values():  # warm the disk cache
        in_pty(cmd, case_env, b"You")
    firsts: dict[str, list[float]] = {name: [] for name in cases}
    ends: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (cmd, case_env) in cases.items():
            first, end = in_pty(cmd, case_env, b"You")
            firsts[name].append(first)
            ends[name].append(end)
    base = statistics.median(firsts[next(iter(cases))])
    print(f"\nat a terminal (pty 100x30), {runs} runs each, interleaved: medians")
    print(f"{'':42} {'first byte':>11} {'exit':>9}  first byte / baseline")
    for name in cases:
        first, end = statistics.median(firsts[name]), statistics.median(ends[name])
        print(f"{name:42} {first * 1000:8.1f} ms {end * 1000:6.1f} ms  {first / base:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before-src", metavar="DIR",
                        help="an older checkout's src folder, timed at a terminal beside this one")
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
        terminal_figures(env, args.runs, args.before_src)
    b, o = statistics.median(base), statistics.median(ours)
    print(f"runs: {args.runs} each, interleaved")
    print(f"baseline  python -c 'import httpx'       median {b * 1000:7.1f} ms")
    print(f"edgechat  -m hi (round trip, loopback)   median {o * 1000:7.1f} ms")
    print(f"ratio edgechat/baseline: {o / b:.2f}x")


if __name__ == "__main__":
    main()
