"""Settings: precedence, checking, the config file's safety, and `edgechat config`."""

from __future__ import annotations

import stat

import pytest

from edgechat_tui.config.settings import (
    DEFAULT_MODEL,
    OPTIONS,
    load_settings,
    read_config_file,
    update_config_file,
)
from edgechat_tui.core.errors import ConfigError
from edgechat_tui.core.secret import Secret


@pytest.fixture
def cfg(tmp_path):
    return tmp_path / "conf" / "config.toml"


def test_defaults_apply_without_a_file(cfg):
    settings = load_settings(config_path=cfg, env={})
    assert settings.model == DEFAULT_MODEL
    assert settings.max_tokens == 2048
    assert settings.api_token is None
    assert settings.user == "default"
    assert all(source == "default" for source in settings.sources.values())


def test_precedence_is_flag_then_env_then_file_then_default(cfg):
    update_config_file(cfg, {"model": "@cf/file/model", "max_tokens": 100, "temperature": 0.1})
    env = {"EDGECHAT_MODEL": "@cf/env/model", "EDGECHAT_MAX_TOKENS": "200"}
    settings = load_settings(config_path=cfg, env=env, flags={"model": "@cf/flag/model"})
    assert settings.model == "@cf/flag/model" and settings.sources["model"] == "flag"
    assert settings.max_tokens == 200 and settings.sources["max_tokens"] == "env EDGECHAT_MAX_TOKENS"
    assert settings.temperature == 0.1 and settings.sources["temperature"] == "file"
    assert settings.sources["system_prompt"] == "default"


def test_cloudflare_variables_use_wrangler_names(cfg):
    env = {"CLOUDFLARE_ACCOUNT_ID": "abc123", "CLOUDFLARE_API_TOKEN": "tok-secret"}
    settings = load_settings(config_path=cfg, env=env)
    assert settings.account_id == "abc123"
    assert settings.api_token.reveal() == "tok-secret"


def test_config_path_from_environment(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('model = "@cf/x/y"\n')
    settings = load_settings(env={"EDGECHAT_CONFIG": str(path)})
    assert settings.config_path == path and settings.model == "@cf/x/y"


def test_written_file_is_private_and_directory_too(cfg):
    update_config_file(cfg, {"api_token": "tok-secret"})
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    update_config_file(cfg, {"model": "@cf/a/b"})
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert 'api_token = "tok-secret"' in cfg.read_text()


def test_secret_never_shows_in_repr_or_str():
    secret = Secret("tok-secret")
    assert "tok-secret" not in repr(secret) and "tok-secret" not in str(secret)
    assert "tok-secret" not in f"{secret}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_tokens", "lots"), ("max_tokens", "0"), ("temperature", "9"), ("temperature", "nan"),
     ("api_base", "ftp://x"), ("default_user", "../etc"), ("account_id", "a b"), ("api_token", "a b")],
)
def test_bad_values_are_refused_and_the_file_is_untouched(cfg, key, value):
    update_config_file(cfg, {"model": "@cf/keep/me"})
    before = cfg.read_bytes()
    with pytest.raises(ConfigError) as info:
        update_config_file(cfg, {key: value})
    assert key in str(info.value)
    assert cfg.read_bytes() == before


def test_unknown_key_is_refused(cfg):
    with pytest.raises(ConfigError, match="Unknown setting 'modle'"):
        update_config_file(cfg, {"modle": "x"})
    assert not cfg.exists()


def test_malformed_file_names_file_and_line(cfg):
    cfg.parent.mkdir(parents=True)
    cfg.write_text('model = "ok"\nmax_tokens = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config_path=cfg, env={})
    assert str(cfg) in info.value.message and "line 2" in info.value.message


def test_wrong_type_names_file_line_and_key(cfg):
    cfg.parent.mkdir(parents=True)
    cfg.write_text('model = "ok"\n\nmax_tokens = "many"\n')
    with pytest.raises(ConfigError) as info:
        read_config_file(cfg)
    assert f"{cfg}, line 3" in info.value.message and "max_tokens" in info.value.message


def test_malformed_file_is_not_overwritten_by_set(cfg):
    cfg.parent.mkdir(parents=True)
    cfg.write_text("this is [ not toml\n")
    with pytest.raises(ConfigError):
        update_config_file(cfg, {"model": "x"})
    assert cfg.read_text() == "this is [ not toml\n"


def test_unknown_key_in_file_is_a_warning_not_a_failure(cfg):
    cfg.parent.mkdir(parents=True)
    cfg.write_text('modle = "x"\n')
    settings = load_settings(config_path=cfg, env={})
    assert settings.model == DEFAULT_MODEL
    assert any("modle" in w and "line 1" in w for w in settings.warnings)


def test_comments_are_kept_in_a_backup(cfg):
    cfg.parent.mkdir(parents=True)
    cfg.write_text('# my notes\nmodel = "@cf/a/b"\n')
    update_config_file(cfg, {"max_tokens": 10})
    assert (cfg.parent / "config.toml.bak").read_text() == '# my notes\nmodel = "@cf/a/b"\n'
    assert load_settings(config_path=cfg, env={}).max_tokens == 10


def test_bad_environment_value_names_the_variable(cfg):
    with pytest.raises(ConfigError, match="EDGECHAT_MAX_TOKENS"):
        load_settings(config_path=cfg, env={"EDGECHAT_MAX_TOKENS": "x"})


def test_unset_removes_a_key(cfg):
    update_config_file(cfg, {"model": "@cf/a/b", "max_tokens": 5})
    update_config_file(cfg, {"model": None})
    assert "model" not in cfg.read_text() and "max_tokens = 5" in cfg.read_text()


def test_every_option_has_help_and_parses_its_default():
    for option in OPTIONS.values():
        assert option.help
        if option.default is not None:
            assert option.parse(option.default) == option.default


def test_a_token_file_readable_by_others_is_warned_about(cfg):
    update_config_file(cfg, {"api_token": "tok-secret"})
    assert load_settings(config_path=cfg, env={}).warnings == ()
    cfg.chmod(0o644)
    warnings = load_settings(config_path=cfg, env={}).warnings
    assert any("chmod 600" in w for w in warnings)
    assert not any("tok-secret" in w for w in warnings)
