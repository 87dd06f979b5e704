"""The clipboard: the system tool found on PATH (real tiny executables the tests put there), run
without a shell and with a timeout, OSC 52 beside it, the notice saying which carried the text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgechat_tui.ui.clipboard import Clipboard, ClipboardTool, CopyResult, find_tool
from edgechat_tui.ui.widgets.messages import AssistantMessage
from tests.ui.conftest import SIZE, make_app, wait_ready, wait_until, write_history
from tests.ui.recorded_clipboard import RecordedClipboard

ALL_TOOLS = ("wl-copy", "xclip", "xsel", "pbcopy", "clip.exe")


def fake_tool(directory: Path, name: str, body: str) -> Path:
    """An executable ``name`` in ``directory`` that runs the shell ``body`` (its own shebang line)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def recorder(directory: Path, name: str, out: Path) -> Path:
    """A tool that writes its standard input, then its arguments, where the test can read them."""
    return fake_tool(directory, name, f'cat > "{out}"\nprintf "%s\\n" "$@" > "{out}.args"')


@pytest.mark.parametrize(
    ("present", "env", "expected"),
    [
        (ALL_TOOLS, {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "wl-copy"),
        (ALL_TOOLS, {"DISPLAY": ":0"}, "xclip"),
        (("xsel", "pbcopy"), {"DISPLAY": ":0"}, "xsel"),
        (("wl-copy", "xclip", "xsel", "pbcopy"), {}, "pbcopy"),
        (("wl-copy", "xclip", "clip.exe"), {}, "clip.exe"),
        (("wl-copy", "xclip", "xsel"), {}, None),  # no display: none of them can work
        ((), {"WAYLAND_DISPLAY": "w", "DISPLAY": ":0"}, None),
    ],
)
def test_the_tool_is_the_first_that_can_work_here(tmp_path, present, env, expected):
    for name in present:
        fake_tool(tmp_path / "bin", name, "exit 0")
    tool = find_tool({"PATH": str(tmp_path / "bin"), **env})
    assert (tool.name if tool else None) == expected
    if tool is not None:
        assert Path(tool.argv[0]) == tmp_path / "bin" / expected


def test_a_tool_that_is_not_executable_is_not_used(tmp_path):
    path = fake_tool(tmp_path / "bin", "pbcopy", "exit 0")
    path.chmod(0o644)
    assert find_tool({"PATH": str(tmp_path / "bin")}) is None


async def test_the_text_reaches_the_tool_whole_and_sanitised(tmp_path):
    out = tmp_path / "clipboard.txt"
    recorder(tmp_path / "bin", "xclip", out)
    clipboard = Clipboard(None, env={"PATH": str(tmp_path / "bin"), "DISPLAY": ":0"})
    text = "line one\n  ünïcode 日本語 \x1b]52;c;aGk=\x07tail\x1b[2J\tend\r\n" + "x" * 200_000
    result = await clipboard.copy(text)
    assert result == CopyResult(result.text, osc52=False, tool="xclip", tool_error=None)
    assert out.read_text("utf-8") == result.text
    assert "\x1b" not in result.text and result.text.startswith("line one\n  ünïcode 日本語 tail")
    assert len(result.text) > 200_000
    assert (tmp_path / "clipboard.txt.args").read_text().split() == ["-selection", "clipboard", "-in"]


async def test_the_tool_runs_without_a_shell(tmp_path):
    """Arguments and text are never a shell's: a text full of shell syntax arrives as it is."""
    out = tmp_path / "clipboard.txt"
    recorder(tmp_path / "bin", "pbcopy", out)
    clipboard = Clipboard(None, env={"PATH": str(tmp_path / "bin")})
    text = "$(touch pwned) `touch pwned2`; rm -rf / && echo $HOME | cat"
    result = await clipboard.copy(text)
    assert result.tool_error is None
    assert out.read_text() == text
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("cat > /dev/null; exit 3", "exit status 3"),
        ("exec sleep 30", "no answer in 0.5 s"),
        ("exit 0 <&-", None),
    ],
)
async def test_a_failing_tool_is_said_and_does_not_hang(tmp_path, body, error):
    fake_tool(tmp_path / "bin", "pbcopy", body)
    clipboard = Clipboard(None, env={"PATH": str(tmp_path / "bin")}, timeout=0.5)
    result = await clipboard.copy("some text " * 10_000)
    if error is None:
        assert result.tool_error in (None, "it closed its input early")
    else:
        assert result.tool_error == error
        assert f"The system clipboard (pbcopy) failed: {error}." in result.notice()


def test_the_notice_says_what_carried_the_text():
    assert CopyResult("x" * 312, True, "xclip").notice("the reply") == \
        "Copied 312 characters of the reply (system clipboard and OSC 52)."
    assert CopyResult("x", True).notice() == \
        "Copied 1 character (OSC 52 only). OSC 52 needs a terminal that lets programs set the clipboard."
    assert CopyResult("ab", True, "wl-copy", "exit status 1").notice("the selection") == (
        "Copied 2 characters of the selection (OSC 52 only). The system clipboard (wl-copy) failed: "
        "exit status 1. OSC 52 needs a terminal that lets programs set the clipboard.")
    assert CopyResult("ab", False, "pbcopy").notice() == "Copied 2 characters (system clipboard)."


async def test_the_app_copies_through_the_tool_and_says_so(settings, fake, tmp_path):
    """The whole path: a key in the app, the tool placed on PATH, the notice, OSC 52 beside it."""
    out = tmp_path / "clipboard.txt"
    recorder(tmp_path / "bin", "wl-copy", out)
    write_history(settings.data_dir, "alice", [("q", "the **reply** text")])
    app = make_app(settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_ready(pilot)
        clipboard = RecordedClipboard(app, env={"PATH": str(tmp_path / "bin"), "WAYLAND_DISPLAY": "w"},
                                      tool=find_tool({"PATH": str(tmp_path / "bin"), "WAYLAND_DISPLAY": "w"}))
        app.chat.clipboard = clipboard
        await pilot.press("ctrl+up")
        await wait_until(pilot, lambda: isinstance(app.focused, AssistantMessage), what="the reply focused")
        await pilot.press("c")
        await wait_until(pilot, lambda: any("system clipboard and OSC 52" in str(n.message)
                                            for n in app._notifications), what="the notice")
        assert out.read_text() == "the **reply** text"
        assert app.clipboard == "the **reply** text"
        assert "Copied 18 characters of the reply (system clipboard and OSC 52)." in \
            [str(n.message) for n in app._notifications]


async def test_no_tool_in_a_browser_tab(tmp_path):
    """Served to a browser, the server's clipboard is not the reader's: OSC 52 only."""
    out = tmp_path / "clipboard.txt"
    recorder(tmp_path / "bin", "pbcopy", out)

    class WebApp:
        is_web = True

        def __init__(self) -> None:
            self.sent: list[str] = []

        def copy_to_clipboard(self, text: str) -> None:
            self.sent.append(text)

    app = WebApp()
    clipboard = Clipboard(lambda: app, tool=ClipboardTool("pbcopy", (str(tmp_path / "bin" / "pbcopy"),)))
    result = await clipboard.copy("hello")
    assert result.carriers == "OSC 52 only" and app.sent == ["hello"]
    assert not out.exists()


def test_the_default_looks_in_the_process_environment(monkeypatch, tmp_path):
    fake_tool(tmp_path / "bin", "clip.exe", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for name in ("WAYLAND_DISPLAY", "DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    tool = Clipboard(None).tool
    assert tool is not None and tool.name == "clip.exe"
