"""The model list: reading the cache, fetching the account's catalog, and opening ``/model``.

Run alone: ``python bench/bench_model_list.py [--runs N] [--models N]``. Everything is in-process
against the loopback Workers AI fake (real HTTP over 127.0.0.1), with a catalog of ``--models``
text-generation models (default 1,000, the most edgechat keeps), each measured beside a baseline
taken in the same run, runs interleaved:

* cache read: ``ModelCatalog.cached()`` (open, read, parse, validate every field) against
  ``json.loads`` of the same file alone;
* fetch: ``ModelCatalog.refresh()`` (every page at 100 a page, validated, then the cache written
  atomically and fsynced) against one token-verify round trip to the same server;
* open: Enter on ``/model`` until the list is mounted and drawn (headless Pilot, a fresh cache),
  against F1 until the help screen is drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from edgechat_tui.backends.local.catalog import ModelCatalog
from edgechat_tui.config.settings import load_settings
from tests.fakes.model_catalog import catalog_item
from tests.fakes.workers_ai import FakeWorkersAI


def settings_for(fake: FakeWorkersAI, root: Path):
    return load_settings(config_path=root / "config.toml", env={
        "EDGECHAT_DATA_DIR": str(root / "data"), "EDGECHAT_CACHE_DIR": str(root / "cache"),
        "CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
        "EDGECHAT_API_BASE": fake.api_base})


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def fetch_and_read(fake: FakeWorkersAI, root: Path, runs: int) -> tuple[dict[str, list[float]], int]:
    catalog = ModelCatalog(settings_for(fake, root))
    times: dict[str, list[float]] = {"fetch": [], "verify": [], "cached": [], "json": []}
    async with httpx.AsyncClient() as client:
        for _ in range(runs):
            start = time.perf_counter()
            fetched = await catalog.refresh()
            times["fetch"].append(time.perf_counter() - start)
            assert fetched.source == "account", fetched.note
            start = time.perf_counter()
            await client.get(f"{fake.api_base}/user/tokens/verify",
                             headers={"Authorization": f"Bearer {fake.token}"})
            times["verify"].append(time.perf_counter() - start)
            start = time.perf_counter()
            cached = catalog.cached()
            times["cached"].append(time.perf_counter() - start)
            assert cached.source == "cache"
            start = time.perf_counter()
            json.loads(catalog.path.read_bytes())
            times["json"].append(time.perf_counter() - start)
    return times, len(fetched.models)


async def open_times(fake: FakeWorkersAI, root: Path, runs: int) -> dict[str, list[float]]:
    from edgechat_tui.ui.app import EdgechatApp
    from edgechat_tui.ui.screens.help import HelpScreen
    from edgechat_tui.ui.screens.model_picker import ModelPicker

    settings = settings_for(fake, root)
    times: dict[str, list[float]] = {"model list": [], "help": []}
    app = EdgechatApp(settings, "bench", cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (app.agent is not None and app.chat.status.state == "ready"):
            await pilot.pause(0.01)
        for _ in range(runs):
            app.chat.prompt.set_text("/model")
            start = time.perf_counter()
            await pilot.press("enter")
            while not (isinstance(app.screen, ModelPicker) and app.screen.model_ids):
                await pilot.pause(0)
            await pilot.pause()  # one more turn of the loop: the frame is drawn
            times["model list"].append(time.perf_counter() - start)
            await pilot.press("escape")
            while isinstance(app.screen, ModelPicker):
                await pilot.pause(0)
            start = time.perf_counter()
            await pilot.press("f1")
            while not isinstance(app.screen, HelpScreen):
                await pilot.pause(0)
            await pilot.pause()
            times["help"].append(time.perf_counter() - start)
            await pilot.press("escape")
            while isinstance(app.screen, HelpScreen):
                await pilot.pause(0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--models", type=int, default=1000)
    args = parser.parse_args()
    with FakeWorkersAI() as fake, tempfile.TemporaryDirectory() as tmp:
        fake.catalog = [catalog_item(f"@cf/bench/model-{i:04d}", window=8192 + i, price=(0.1, 0.2),
                                     function_calling=i % 2 == 0, description=f"Model number {i}.")
                        for i in range(args.models)]
        root = Path(tmp)
        times, count = asyncio.run(fetch_and_read(fake, root, args.runs))
        ui = asyncio.run(open_times(fake, root, args.runs))
    print(f"{count:,} models, {args.runs} runs, medians")
    rows = [
        ("cache read (ModelCatalog.cached)", times["cached"], "json.loads alone", times["json"]),
        (f"fetch, {-(-count // 100)} pages, cached after", times["fetch"],
         "one verify round trip", times["verify"]),
        ("/model to the list drawn", ui["model list"], "F1 to help drawn", ui["help"]),
    ]
    for name, measured, base_name, base in rows:
        print(f"{name:<34} {ms(measured):8.2f} ms   {base_name} {ms(base):7.2f} ms   "
              f"{ms(measured) / ms(base):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
