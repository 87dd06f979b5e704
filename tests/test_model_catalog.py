"""The model catalog: fetched over real HTTP from the loopback fake, cached on disk, the table offline.

Every catalog field is untrusted: the hostile cases below are a class (each field, each wrong type
or range, each envelope fault), and each must end in a usable list with nothing unsafe in it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from edgechat_tui.backends.local.catalog import FRESH_FOR, MAX_PAGES, ModelCatalog
from edgechat_tui.config.settings import Settings, load_settings
from edgechat_tui.core.catalog import (
    MAX_DESCRIPTION,
    USD_PER_NEURON,
    CatalogError,
    ModelPrice,
    builtin_models,
    parse_model,
    parse_search_page,
    reply_cost,
)
from edgechat_tui.core.messages import Usage
from edgechat_tui.core.models import shared_data
from edgechat_tui.storage.catalog_cache import CacheProblem, read_cache, write_cache
from tests.fakes.model_catalog import catalog_item
from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI

TABLE_IDS = [model.id for model in builtin_models()]


@pytest.fixture
def fake():
    with FakeWorkersAI() as server:
        yield server


def settings_for(tmp_path: Path, fake: FakeWorkersAI | None, **env: str) -> Settings:
    values = {"EDGECHAT_DATA_DIR": str(tmp_path / "data"), "EDGECHAT_CACHE_DIR": str(tmp_path / "cache")}
    if fake is not None:
        values |= {"CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
                   "EDGECHAT_API_BASE": fake.api_base}
    return load_settings(config_path=tmp_path / "config.toml", env=values | env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fetching -----------------------------------------------------------------------------------


async def test_the_account_catalog_arrives_over_http_and_is_cached(tmp_path, fake):
    catalog = ModelCatalog(settings_for(tmp_path, fake))
    fetched = await catalog.refresh()
    assert fetched.source == "account" and fetched.note is None
    # Only the text-generation models, with the fields the catalog gives.
    assert [m.id for m in fetched.models] == list(fake.models)
    llama = fetched.get("@cf/meta/llama-3.3-70b-instruct-fp8-fast")
    assert llama.context_window == 24_000
    assert llama.price == ModelPrice(0.29, 2.25)
    assert llama.function_calling is True
    assert fetched.get("@cf/meta/llama-3.1-8b-instruct-fp8").price is None
    request = fake.catalog_requests[0]
    assert request.headers["authorization"] == f"Bearer {fake.token}"
    # The cache: 0600 in a 0700 folder, and read back the same.
    assert stat.S_IMODE(catalog.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(catalog.path.parent.stat().st_mode) == 0o700
    assert fake.token not in catalog.path.read_text() and fake.account_id not in catalog.path.name
    cached = ModelCatalog(settings_for(tmp_path, fake)).cached()
    assert cached.source == "cache" and cached.models == fetched.models and not cached.stale


async def test_paging_follows_result_info_to_the_last_page(tmp_path, fake):
    names = [f"@cf/acme/model-{i:03d}" for i in range(230)]
    fake.catalog = [catalog_item(name, window=8192 + i) for i, name in enumerate(names)]
    fetched = await ModelCatalog(settings_for(tmp_path, fake)).refresh()
    assert [m.id for m in fetched.models] == names
    assert fetched.get("@cf/acme/model-229").context_window == 8192 + 229
    assert len(fake.catalog_requests) == 3  # 100 + 100 + 30


async def test_a_pager_that_never_ends_is_stopped(tmp_path, fake):
    # Every page full, and result_info claiming a million pages: edgechat stops at MAX_PAGES.
    fake.catalog = [catalog_item(f"@cf/acme/model-{i:05d}") for i in range(100 * (MAX_PAGES + 5))]
    fetched = await ModelCatalog(settings_for(tmp_path, fake)).refresh()
    assert len(fake.catalog_requests) <= MAX_PAGES
    assert 0 < len(fetched.models) <= 1000


# --- falling back -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["refused token", "no permission", "server error", "offline",
                                  "no credentials"])
async def test_any_failure_falls_back_to_the_table_with_a_note(tmp_path, fake, case):
    env: dict[str, str] = {}
    if case == "refused token":
        env["CLOUDFLARE_API_TOKEN"] = "not-the-token"
    elif case == "no permission":
        fake.token_has_permission = False
    elif case == "server error":
        fake.catalog_reply = ErrorReply(500, 7000, "Internal error")
    elif case == "offline":
        env["EDGECHAT_API_BASE"] = f"http://127.0.0.1:{free_port()}/client/v4"
    settings = settings_for(tmp_path, None if case == "no credentials" else fake, **env)
    if case == "no credentials":
        settings = settings_for(tmp_path, None)
    result = await ModelCatalog(settings).refresh()
    assert result.source == "built-in"
    assert [m.id for m in result.models] == TABLE_IDS
    assert result.note and "showing the built-in table" in result.note
    assert fake.token not in result.note and "not-the-token" not in result.note
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


async def test_a_failure_keeps_the_cached_list(tmp_path, fake):
    catalog = ModelCatalog(settings_for(tmp_path, fake))
    first = await catalog.refresh()
    fake.catalog_reply = ErrorReply(503, 7000, "Service unavailable")
    again = await catalog.refresh()
    assert again.source == "cache" and again.models == first.models
    assert "showing the cached list" in again.note


# --- the cache ----------------------------------------------------------------------------------


def test_fresh_stale_and_clock_set_back(tmp_path):
    path = tmp_path / "cache" / "models.json"
    models = builtin_models()[:2]
    now = time.time()
    for fetched_at, stale in ((now - 60, False), (now - FRESH_FOR - 1, True), (now + 3600, False)):
        write_cache(path, models, fetched_at)
        found = read_cache(path)
        assert found.models == models and found.fetched_at == fetched_at
        settings = load_settings(config_path=tmp_path / "c.toml", env={"EDGECHAT_CACHE_DIR": str(tmp_path)})
        catalog = ModelCatalog(settings)
        catalog.path = path
        assert catalog.cached().stale is stale


@pytest.mark.parametrize("content", [
    b"", b"\x00\xff garbage", b"[]", b'{"schema": 2, "fetched_at": 1, "models": []}',
    b'{"schema": 1, "fetched_at": "yesterday", "models": []}',
    b'{"schema": 1, "fetched_at": 1700000000, "models": []}',
    b'{"schema": 1, "fetched_at": 1700000000, "models": [{"name": "\\u001b[31m@cf/a/b"}]}',
    b'{"schema": 1, "fetched_at": 1700000000, "models": "lots"}',
    b"[" * 100_000,
])
def test_a_corrupt_cache_is_a_problem_not_a_crash(tmp_path, content):
    path = tmp_path / "models.json"
    path.write_bytes(content)
    with pytest.raises(CacheProblem):
        read_cache(path)


async def test_a_corrupt_cache_is_replaced_by_the_next_fetch(tmp_path, fake):
    catalog = ModelCatalog(settings_for(tmp_path, fake))
    catalog.path.parent.mkdir(parents=True)
    catalog.path.write_bytes(b"{not json")
    shown = catalog.cached()
    assert shown.source == "built-in" and "damaged" in shown.note and shown.stale
    fetched = await catalog.refresh()
    assert fetched.source == "account"
    assert read_cache(catalog.path).models == list(fetched.models)


def test_a_cache_that_is_a_link_or_a_folder_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.json"
    write_cache(target, builtin_models()[:1], time.time())
    link = tmp_path / "models.json"
    link.symlink_to(target)
    with pytest.raises(CacheProblem):
        read_cache(link)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(CacheProblem):
        read_cache(folder)


async def test_an_unwritable_cache_still_gives_the_list(tmp_path, fake):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    catalog = ModelCatalog(settings_for(tmp_path, fake, EDGECHAT_CACHE_DIR=str(blocker / "cache")))
    fetched = await catalog.refresh()
    assert fetched.source == "account" and len(fetched.models) == len(fake.models)
    assert "could not be saved in the cache" in fetched.note
    assert blocker.read_text() == "a file where the cache folder should be"


# --- hostile catalogs, as a class -----------------------------------------------------------------

ESC = "\x1b"
GOOD = "@cf/acme/good-model"

#: Items whose model must be skipped whole: its name could not be sent, or it is not text generation.
BAD_NAMES: list[Any] = [
    None, 7, ["@cf/a/b"], "", "llama", "@cf/../etc/passwd", "@cf/a/b/../../c", "@cf/a/b?x=1", "@cf/a/b#f",
    "@cf/a/b c", f"@cf/a/{ESC}[31mred", "@cf/a/b\n", "[b]@cf/a/b[/b]", "@cf/a/" + "x" * 200, "@cf/a/b\u202e",
]
#: (property, value) pairs the model keeps as unknown: the wrong type, or out of range.
BAD_FIELDS: list[tuple[str, Any]] = [
    ("context_window", "-1"), ("context_window", -5), ("context_window", "1e9"), ("context_window", 10**13),
    ("context_window", "abc"), ("context_window", True), ("context_window", None),
    ("context_window", [24000]),
    ("context_window", 100), ("context_window", "٢٤٠٠٠"), ("context_window", 24000.5),
    ("price", "cheap"), ("price", [{"unit": "per M input tokens", "price": -1, "currency": "USD"}]),
    ("price", [{"unit": "per M input tokens", "price": 1e9, "currency": "USD"}]),
    ("price", [{"unit": "per M input tokens", "price": True, "currency": "USD"}]),
    ("price", [{"unit": "per M input tokens", "price": "NaN", "currency": "USD"}]),
    ("price", [{"unit": "per M input tokens", "price": 0.3, "currency": "EUR"}]),
    ("price", [{"unit": "per image", "price": 0.3, "currency": "USD"}]),
    ("price", [{"unit": 5, "price": 0.3}]), ("price", {"input": 0.3}),
    ("function_calling", "yes"), ("function_calling", 1), ("function_calling", {"value": True}),
]


def field_value(model, prop):
    return {"context_window": model.context_window, "price": model.price,
            "function_calling": model.function_calling}[prop]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_model_with_a_bad_name_is_skipped(name):
    assert parse_model(catalog_item("@cf/a/b") | {"name": name}) is None


@pytest.mark.parametrize(("prop", "value"), BAD_FIELDS, ids=repr)
def test_a_bad_field_is_left_unknown_and_the_model_kept(prop, value):
    item = catalog_item(GOOD, properties=[{"property_id": prop, "value": value}])
    model = parse_model(item)
    assert model is not None and model.id == GOOD
    assert field_value(model, prop) is None


@pytest.mark.parametrize("description", [
    f"{ESC}]52;c;ZXZpbA=={ESC}\\ steals the clipboard", f"{ESC}[2J{ESC}[H clears the screen",
    "[@click=app.quit]click me[/]", "[b]bold[/b] and \x07 bell \x9b31m C1", "x" * 1_000_000,
    "line\nbreaks\r\nand\ttabs", 42, None, {"text": "no"},
])
def test_descriptions_are_sanitised_and_capped(description):
    model = parse_model(catalog_item(GOOD) | {"description": description})
    assert model is not None
    text = model.description
    assert len(text) <= MAX_DESCRIPTION
    assert not any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text)
    if isinstance(description, str) and description.startswith("[@click"):
        assert text == description  # shown as typed: it never reaches a markup parser


@pytest.mark.parametrize("body", [
    b"<html>502 Bad Gateway</html>", b"[]", b'{"success": false, "errors": [{"code": 7000}], "result": []}',
    b'{"success": true, "result": {"name": "@cf/a/b"}}', b'{"success": "yes", "result": []}',
    b'{"success": true, "result": []}', b'{"success": true, "result": [1, "two", null]}',
    b"[" * 50_000 + b"]" * 50_000, b"{" + b" " * (5 * 1024 * 1024) + b"}",
], ids=lambda b: repr(b[:40]))
async def test_a_malformed_answer_falls_back_with_a_clear_line(tmp_path, fake, body):
    fake.catalog_reply = ErrorReply(200, None, body=body, content_type="application/json")
    result = await ModelCatalog(settings_for(tmp_path, fake)).refresh()
    assert result.source == "built-in" and [m.id for m in result.models] == TABLE_IDS
    assert result.note.startswith("the model list could not be read") or "could not be fetched" in result.note
    assert ESC not in result.note and "\n" not in result.note


async def test_a_hostile_catalog_keeps_only_what_is_safe(tmp_path, fake):
    fake.catalog = [
        catalog_item(GOOD, window=" 32000 ", price=(0.1, 0.2), function_calling=True,
                     description=f"good {ESC}[31mred{ESC}[0m"),
        *(catalog_item("@cf/a/b") | {"name": name} for name in BAD_NAMES),
        catalog_item("@cf/acme/odd-fields",
                     properties=[{"property_id": p, "value": v} for p, v in BAD_FIELDS]),
        "not an object", None, 12,
        catalog_item(GOOD, window=1000),  # a second entry with the same id: the first is kept
    ]
    result = await ModelCatalog(settings_for(tmp_path, fake)).refresh()
    assert result.source == "account"
    assert [m.id for m in result.models] == [GOOD, "@cf/acme/odd-fields"]
    good = result.get(GOOD)
    assert good.context_window == 32_000 and good.price == ModelPrice(0.1, 0.2) and good.function_calling
    assert good.description == "good red"
    odd = result.get("@cf/acme/odd-fields")
    assert (odd.context_window, odd.price, odd.function_calling) == (None, None, None)
    assert result.skipped == len(BAD_NAMES) + 3
    cached = read_cache(ModelCatalog(settings_for(tmp_path, fake)).path)
    assert cached.models == list(result.models)


def test_a_page_that_is_not_the_envelope_is_an_error():
    for data in (None, [], "text", {"success": True}, {"success": True, "result": "x"}, {"result": []}):
        with pytest.raises(CatalogError):
            parse_search_page(data)


# --- cost -----------------------------------------------------------------------------------------


def test_reply_cost_in_dollars_and_neurons():
    cost = reply_cost(Usage(1000, 200, 1200), ModelPrice(0.29, 2.25))
    assert cost.dollars == pytest.approx(0.00074)
    assert cost.neurons == pytest.approx(0.00074 / 0.000011)
    assert USD_PER_NEURON == shared_data("models.json")["pricing"]["usd_per_1000_neurons"] / 1000
    # Anything unknown: no cost, rather than a guess.
    for usage, price in ((None, ModelPrice(1, 1)), (Usage(1, 1), None), (Usage(None, 5), ModelPrice(1, 1)),
                         (Usage(5, None), ModelPrice(1, 1)), (Usage(5, 5), ModelPrice(None, 1)),
                         (Usage(5, 5), ModelPrice(1, None))):
        assert reply_cost(usage, price) is None


def test_the_built_in_table_has_a_window_for_every_model_and_prices_in_range():
    table = shared_data("models.json")["models"]
    for model in builtin_models():
        assert model.context_window == table[model.id]["context_window"]
        if model.price is not None:
            assert 0 <= model.price.input <= 100 and 0 <= model.price.output <= 100


def test_the_cache_file_is_the_catalogs_own_item_form(tmp_path):
    path = tmp_path / "c" / "models.json"
    write_cache(path, builtin_models(), 1_700_000_000.0)
    data = json.loads(path.read_text())
    assert data["schema"] == 1 and data["fetched_at"] == 1_700_000_000.0
    assert [parse_model(item) for item in data["models"]] == builtin_models()
    assert not [name for name in os.listdir(path.parent) if name.endswith(".tmp")]


# --- the fake speaks the endpoint as the reference describes ---------------------------------------


def test_the_fake_pages_filters_and_refuses_as_the_service_does(fake):
    import httpx

    url = f"{fake.api_base}/accounts/{fake.account_id}/ai/models/search"
    auth = {"Authorization": f"Bearer {fake.token}"}
    fake.catalog = [catalog_item(f"@cf/acme/m{i:02d}") for i in range(45)]
    fake.catalog.append(catalog_item("@cf/acme/embed", task="Text Embeddings"))
    first = httpx.get(url, headers=auth).json()
    assert first["success"] is True and len(first["result"]) == 20
    assert first["result_info"] == {"page": 1, "per_page": 20, "count": 20, "total_count": 46,
                                    "total_pages": 3}
    last = httpx.get(url, headers=auth, params={"task": "Text Generation", "page": 3}).json()
    assert [m["name"] for m in last["result"]] == [f"@cf/acme/m{i:02d}" for i in range(40, 45)]
    assert last["result_info"]["total_count"] == 45
    beyond = httpx.get(url, headers=auth, params={"page": 9}).json()
    assert beyond["result"] == [] and beyond["success"] is True
    found = httpx.get(url, headers=auth, params={"search": "m07"}).json()
    assert [m["name"] for m in found["result"]] == ["@cf/acme/m07"]
    assert httpx.get(url, headers=auth, params={"per_page": 1000}).status_code == 400
    assert httpx.get(url, headers=auth, params={"page": "x"}).status_code == 400
    refused = httpx.get(url, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == 10000
    assert httpx.post(url, headers=auth).json()["errors"][0]["code"] == 7001
    other = httpx.get(url.replace(fake.account_id, "f" * 32), headers=auth)
    assert other.status_code == 400 and other.json()["errors"][0]["code"] == 7003
