"""The command line: usage errors, config subcommands, exit codes (no network needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import TEST_TOKEN, run_cli


def test_version(isolated_env):
    result = run_cli(["--version"], isolated_env)
    assert result.returncode == 0 and result.stdout.startswith("edgechat ")


def test_help_lists_commands(isolated_env):
    result = run_cli(["--help"], isolated_env)
    assert result.returncode == 0
    for word in ("--user", "--remote", "-m", "config", "history", "users", "reset"):
        assert word in result.stdout


@pytest.mark.parametrize("user", ["../etc", "a/b", "", ".hidden", "a b", "x" * 65, "a\x01b", "con"])
def test_bad_user_id_is_refused_before_any_file_is_touched(isolated_env, user):
    result = run_cli(["--user", user, "-m", "hello"], isolated_env)
    assert result.returncode == 2
    assert "user id" in result.stderr and "Traceback" not in result.stderr
    assert not Path(isolated_env["EDGECHAT_DATA_DIR"]).exists()


def test_unknown_flag_is_a_usage_error(isolated_env):
    result = run_cli(["--frobnicate"], isolated_env)
    assert result.returncode == 2 and "error" in result.stderr and "Traceback" not in result.stderr


def test_missing_credentials_is_a_clear_error(isolated_env):
    result = run_cli(["-m", "hello"], isolated_env)
    assert result.returncode == 2
    assert "CLOUDFLARE_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_empty_message_is_refused(isolated_env):
    result = run_cli(["-m", "   \n"], isolated_env)
    assert result.returncode == 2 and "nothing to send" in result.stderr


def test_config_set_show_unset(isolated_env):
    path = Path(isolated_env["EDGECHAT_CONFIG"])
    assert run_cli(["config", "set", "api_token", TEST_TOKEN], isolated_env).returncode == 0
    assert run_cli(["config", "set", "max_tokens", "512"], isolated_env).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    show = run_cli(["config", "show"], isolated_env)
    assert show.returncode == 0
    assert TEST_TOKEN not in show.stdout + show.stderr
    assert "api_token" in show.stdout and "hidden" in show.stdout
    assert "max_tokens" in show.stdout and "512  [file]" in show.stdout
    env = dict(isolated_env, EDGECHAT_MAX_TOKENS="300")
    assert "300  [env EDGECHAT_MAX_TOKENS]" in run_cli(["config", "show"], env).stdout
    assert run_cli(["config", "unset", "max_tokens"], isolated_env).returncode == 0
    assert "2048  [default]" in run_cli(["config", "show"], isolated_env).stdout


def test_config_set_refuses_bad_key_and_value_leaving_file_untouched(isolated_env):
    path = Path(isolated_env["EDGECHAT_CONFIG"])
    run_cli(["config", "set", "model", "@cf/a/b"], isolated_env)
    before = path.read_bytes()
    bad_key = run_cli(["config", "set", "modle", "x"], isolated_env)
    bad_value = run_cli(["config", "set", "max_tokens", "many"], isolated_env)
    assert bad_key.returncode == 2 and "Unknown setting" in bad_key.stderr
    assert bad_value.returncode == 2 and "max_tokens" in bad_value.stderr
    assert path.read_bytes() == before


def test_malformed_config_file_is_reported_without_traceback(isolated_env):
    path = Path(isolated_env["EDGECHAT_CONFIG"])
    path.parent.mkdir(parents=True)
    path.write_text("model = \n")
    result = run_cli(["config", "show"], isolated_env)
    assert result.returncode == 2
    assert str(path) in result.stderr and "line 1" in result.stderr and "Traceback" not in result.stderr
    assert path.read_text() == "model = \n"


def test_history_users_reset_on_empty_data_dir(isolated_env):
    """A profile that never existed is named as such (exit 1), not shown as an empty conversation."""
    assert run_cli(["users"], isolated_env).returncode == 0
    for args in (["history", "--user", "alice", "--format", "json"], ["history", "--user", "alice"],
                 ["reset", "--user", "alice"]):
        run = run_cli(args, isolated_env)
        assert run.returncode == 1, run
        assert "no profile 'alice'" in run.stderr and run.stdout == "", run
        assert run.stderr.count("edgechat: error:") == 1 and "Traceback" not in run.stderr


def test_the_top_level_parse_is_the_whole_parsers():
    # Starts without a subcommand parse with the top-level parser alone: the same answers, and
    # anything else (a command, help, a mistake) is the whole parser's.
    import pytest as _pytest

    from edgechat_tui.cli.parser import COMMANDS, build_parser, parse_args
    from edgechat_tui.core.errors import UsageError

    whole = build_parser()
    (commands,) = [action for action in whole._actions if action.dest == "command"]
    assert set(commands.choices) == COMMANDS
    for argv in ([], ["--user", "bob"], ["-u", "bob", "--new"], ["--chat", "0abc"], ["-m", "hi", "--json"],
                 ["-m", "history"], ["--us", "bob"], ["history", "--format", "json"], ["chats"],
                 ["search", "lisbon", "--json"], ["search", "serve"], ["serve", "--port", "8080"],
                 ["chats", "rename", "01jggmxk800012", "serve"], ["reset", "--user", "serve"],
                 ["config", "set", "model", "x"], ["config", "show", "--user", "a"], ["users"],
                 ["models", "--json"], ["chats", "--archived", "--json"], ["history", "--chat", "x"],
                 ["--user", "bob", "search", "x"], ["search", "--user", "bob", "two words"]):
        assert parse_args(argv) == build_parser().parse_args(argv), argv
    for argv in (["--usr", "bob"], ["hisotry"], ["--user"], ["--chat", "1", "--new", "extra"],
                 ["search", "x", "--port", "1"], ["serve", "--prot", "1"], ["search"], ["config"],
                 ["config", "sett"], ["chats", "rename"], ["history", "--format", "txt"], ["users", "x"]):
        with _pytest.raises(UsageError) as fast:
            parse_args(argv)
        with _pytest.raises(UsageError) as slow:
            build_parser().parse_args(argv)
        assert (fast.value.message, fast.value.hint) == (slow.value.message, slow.value.hint), argv
