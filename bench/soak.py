"""The reliability soak: the fault scenarios of tests/reliability/, run again and again for a set time.

    python bench/soak.py --minutes 8            # all kinds, time shared between them
    python bench/soak.py --minutes 2 --only crash,files --seed 7 --json soak.json

It runs the same code as the CI suite (tests/reliability/scenarios.py, sweeps.py, network_cases.py,
tui_session.py) with fresh random choices each batch: one-shot processes killed with SIGKILL at random
moments, several processes chatting as one user, the TUI killed mid-turn in a pty, every network
fault of every backend (in process and through the command line), histories cut at every byte and
damaged at random, a full disk at random offsets, random user ids. It prints the same table as
docs/reliability.md (cases tried, lost, duplicated, unclear errors) and how the time was spent, and
exits 1 if anything was lost, duplicated or unclear.

Bounded: no batch starts after the deadline; the batch running then finishes (under a minute). Not
part of CI. Needs root for the full-disk (tmpfs) batches and skips them otherwise. Everything runs on
loopback and in a temporary folder that is removed at the end (--keep keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgechat_tui.core.messages import Message  # noqa: E402
from tests.fakes.workers_ai import FakeWorkersAI  # noqa: E402
from tests.reliability import harness  # noqa: E402
from tests.reliability.figures import FIGURES  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    ACCOUNT,
    TOKEN,
    Unavailable,
    Workspace,
    scan_tree_for_secrets,
    tmpfs,
)
from tests.reliability.network_cases import all_cases, cli_cases, run_case, run_cli_case  # noqa: E402
from tests.reliability.scenarios import concurrent_one_shot, crash_one_shot  # noqa: E402
from tests.reliability.sweeps import (  # noqa: E402
    damage_sweep,
    disk_full_sweep,
    random_text,
    truncation_sweep,
    user_id_sweep,
)
from tests.reliability.tui_session import tui_crash_rounds  # noqa: E402

#: How the time is shared between the kinds (relative weights).
SHARES = {"crash": 30, "concurrency": 12, "tui-crash": 10, "network": 16, "network-cli": 8, "files": 10,
          "disk": 7, "userids": 7}


def command(kind: str) -> str:
    return f"python bench/soak.py --only {kind}"


class Soak:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.batch = 0

    def workspace(self, kind: str) -> Workspace:
        self.batch += 1
        return Workspace(self.root / f"{kind}-{self.batch}")

    def finish(self, space: Workspace) -> None:
        """Search the batch's files for tokens (the config file holds one by design), then remove them."""
        scan_tree_for_secrets(space.root, allowed=lambda p: p.name in ("config.toml", "config.toml.bak"))
        shutil.rmtree(space.root, ignore_errors=True)

    # --- the kinds ---

    def crash(self) -> None:
        space = self.workspace("crash")
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            report = crash_one_shot(space, fake, 25, self.rng)
        FIGURES.add("crash: one-shot killed (SIGKILL) at random moments", command=command("crash"),
                    tried=report.rounds, lost=len(report.lost), duplicated=len(report.duplicated),
                    unclear=len(report.load_failures) + len(report.unexpected_exits) + len(report.split),
                    note=None if report.ok else report.summary())
        self.finish(space)

    def concurrency(self) -> None:
        space = self.workspace("concurrency")
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            report = concurrent_one_shot(space, fake, processes=3, turns=5)
        FIGURES.add("concurrency: one-shot processes, one user", command=command("concurrency"),
                    tried=report.processes * report.turns, lost=len(report.lost),
                    duplicated=len(report.duplicated),
                    unclear=len(report.failures) + len(report.split) + len(report.stale),
                    note=None if report.ok else report.summary())
        self.finish(space)

    def tui_crash(self) -> None:
        space = self.workspace("tui")
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            report = tui_crash_rounds(space, fake, 2, self.rng)
        FIGURES.add("crash: TUI killed (SIGKILL) mid-turn in a pty", command=command("tui-crash"),
                    tried=report.turns, lost=len(report.lost), duplicated=len(report.duplicated),
                    unclear=len(report.problems), note=None if report.ok else report.summary())
        self.finish(space)

    def network(self) -> None:
        space = self.workspace("network")
        cases = all_cases()
        self.rng.shuffle(cases)

        async def run_all() -> None:
            for index, case in enumerate(cases):
                workdir = space.root / str(index)
                workdir.mkdir(parents=True)
                outcome = await run_case(case, workdir)
                FIGURES.add(f"network: {case.backend}", command=command("network"), tried=1,
                            lost=len(outcome.wrongly_stored), duplicated=len(outcome.duplicate_sends),
                            unclear=len(outcome.unclear), note=None if outcome.ok else str(outcome))

        asyncio.run(run_all())
        self.finish(space)

    def network_cli(self) -> None:
        cases = cli_cases()
        for case in self.rng.sample(cases, k=min(8, len(cases))):
            space = self.workspace("netcli")
            outcome = run_cli_case(case, space)
            FIGURES.add(f"network via CLI: {case.backend}", command=command("network-cli"), tried=1,
                        lost=len(outcome.wrongly_stored), duplicated=len(outcome.duplicate_sends),
                        unclear=len(outcome.unclear), note=None if outcome.ok else str(outcome))
            self.finish(space)

    def files(self) -> None:
        workdir = self.root / f"files-{self.batch}"
        workdir.mkdir(parents=True)
        self.batch += 1
        turns = [(Message(role="user", content=f"turn {i}"),
                  Message(role="assistant", content=random_text(self.rng, self.rng.randrange(0, 300))))
                 for i in range(1, self.rng.randrange(2, 6))]
        sweep = truncation_sweep(workdir, turns)
        FIGURES.add("files: history cut at every byte of its last record", command=command("files"),
                    tried=sweep.tried, lost=len(sweep.lost), unclear=len(sweep.unclear),
                    note=sweep.problems[0] if sweep.problems else None)
        sweep = damage_sweep(workdir, random.Random(self.rng.random()), variants=10)
        FIGURES.add("files: random bytes, invalid UTF-8, newer schema, empty file", command=command("files"),
                    tried=sweep.tried, lost=len(sweep.lost), unclear=len(sweep.unclear),
                    note=sweep.problems[0] if sweep.problems else None)
        shutil.rmtree(workdir, ignore_errors=True)

    def disk(self) -> None:
        workdir = self.root / f"disk-{self.batch}"
        self.batch += 1
        with tmpfs(workdir, 32) as disk:
            sweep = disk_full_sweep(disk, [self.rng.randrange(0, 4096) for _ in range(200)],
                                    reply_length=self.rng.randrange(4100, 9000))
        FIGURES.add("disk: full at each offset of a write (in-process sweep)", command=command("disk"),
                    tried=sweep.tried, lost=len(sweep.lost), unclear=len(sweep.unclear),
                    note=sweep.problems[0] if sweep.problems else None)
        shutil.rmtree(workdir, ignore_errors=True)

    def userids(self) -> None:
        workdir = self.root / f"userids-{self.batch}"
        workdir.mkdir(parents=True)
        self.batch += 1
        sweep = user_id_sweep(workdir, self.rng, 1000)
        FIGURES.add("security: user ids never name a file outside the data dir (random ids)",
                    command=command("userids"), tried=sweep.tried, lost=len(sweep.lost),
                    note=sweep.problems[0] if sweep.problems else None)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="how long to keep starting batches")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's random choices")
    parser.add_argument("--only", default="", help=f"comma-separated kinds of: {', '.join(SHARES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    kinds = [k for k in (args.only.split(",") if args.only else SHARES) if k]
    unknown = [k for k in kinds if k not in SHARES]
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    harness.TOKEN_COMMAND = "python bench/soak.py  (every edgechat run and file is searched)"
    root = Path(tempfile.mkdtemp(prefix="edgechat-soak-"))
    soak = Soak(root, random.Random(seed))
    runners: dict[str, Callable[[], None]] = {
        "crash": soak.crash, "concurrency": soak.concurrency, "tui-crash": soak.tui_crash,
        "network": soak.network, "network-cli": soak.network_cli, "files": soak.files, "disk": soak.disk,
        "userids": soak.userids,
    }
    spent = dict.fromkeys(kinds, 0.0)
    batches = dict.fromkeys(kinds, 0)
    broken: dict[str, str] = {}
    started = last_report = time.monotonic()
    deadline = started + args.minutes * 60
    print(f"soak: seed {seed}, {args.minutes:g} minutes, kinds {', '.join(kinds)}, in {root}", flush=True)
    try:
        while time.monotonic() < deadline:
            live = [k for k in kinds if k not in broken]
            if not live:
                break
            kind = min(live, key=lambda k: spent[k] / SHARES[k])
            begun = time.monotonic()
            try:
                runners[kind]()
            except Unavailable as exc:
                broken[kind] = f"not available here: {exc}"
            except Exception as exc:  # a scenario that cannot run is reported, and the soak goes on
                broken[kind] = f"{type(exc).__name__}: {exc}"
                FIGURES.add(f"soak: {kind} could not run", command=command(kind), tried=1, unclear=1,
                            note=traceback.format_exc(limit=3)[-600:])
            spent[kind] += time.monotonic() - begun
            batches[kind] += 1
            if time.monotonic() - last_report >= 15:
                last_report = time.monotonic()
                done = ", ".join(f"{k} {batches[k]}" for k in kinds)
                print(f"  {last_report - started:6.0f} s  batches: {done}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    total = time.monotonic() - started
    print(f"\nsoak: {total / 60:.1f} minutes, seed {seed}\n")
    print(FIGURES.table())
    print("\ntime spent per kind:")
    for kind in kinds:
        print(f"  {kind:<12} {batches[kind]:>4} batches  {spent[kind]:7.1f} s")
    for kind, why in broken.items():
        print(f"  {kind}: stopped: {why}")
    if args.json:
        FIGURES.write_json(args.json)
    failures = FIGURES.failures()
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
