"""``edgechat models``: the catalog from the loopback fake in a real process, its cache, its fallback."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.fakes.model_catalog import catalog_item
from tests.fakes.workers_ai import ErrorReply, FakeWorkersAI


def env_for(isolated_env, fake):
    return isolated_env | {"CLOUDFLARE_ACCOUNT_ID": fake.account_id, "CLOUDFLARE_API_TOKEN": fake.token,
                           "EDGECHAT_API_BASE": fake.api_base}


def test_models_lists_the_account_catalog_then_uses_the_cache(isolated_env):
    with FakeWorkersAI() as fake:
        fake.catalog.append(catalog_item("@cf/acme/x", window=9000, price=(0.5, 1.5), function_calling=True,
                                         description="\x1b]0;title\x07desc"))
        fake.models["@cf/acme/x"] = 9000
        env = env_for(isolated_env, fake)
        result = run_cli(["models", "--json"], env)
        assert result.returncode == 0, result.stderr
        listed = json.loads(result.stdout)
        assert [m["id"] for m in listed] == list(fake.models)
        assert listed[-1] == {"id": "@cf/acme/x", "description": "desc", "contextWindow": 9000,
                              "price": {"input": 0.5, "output": 1.5}, "functionCalling": True}
        table = run_cli(["models"], env)
        assert table.returncode == 0
        assert "@cf/acme/x" in table.stdout and "9k ctx · $0.50/$1.50 · tools" in table.stdout
        assert "\x1b" not in table.stdout + table.stderr
        assert len(fake.catalog_requests) == 1  # the second run used the fresh cache
        assert fake.token not in result.stdout + result.stderr + table.stdout + table.stderr


def test_models_offline_prints_the_table_with_a_warning(isolated_env):
    with FakeWorkersAI() as fake:
        fake.catalog_reply = ErrorReply(403, 10000, "Authentication error")
        result = run_cli(["models"], env_for(isolated_env, fake))
    assert result.returncode == 0
    assert "@cf/openai/gpt-oss-120b" in result.stdout  # the built-in table
    assert "warning: the model list could not be fetched" in result.stderr
    assert "showing the built-in table" in result.stderr


def test_models_in_remote_mode_says_the_agent_chooses(isolated_env):
    result = run_cli(["models", "--remote", "http://127.0.0.1:9"], isolated_env)
    assert result.returncode == 1
    assert "the agent chooses its model" in result.stderr
