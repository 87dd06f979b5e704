"""Putting text on the clipboard: OSC 52 through the terminal, and the system's clipboard tool.

OSC 52 (Textual's ``App.copy_to_clipboard``) asks the terminal to set the clipboard; not every
terminal allows it (and some only over a local connection), and the program cannot tell whether it
worked. So where the system has a clipboard tool, the text goes to that too: ``wl-copy`` under
Wayland, ``xclip`` or ``xsel`` under X11 (only when the display variable says there is one),
``pbcopy`` on macOS, ``clip.exe`` under WSL. The tool is found on ``PATH``, run without a shell
with the text on its standard input, given :data:`TOOL_TIMEOUT` seconds, and awaited as a
subprocess, so the event loop never waits on it. In a browser tab (``edgechat serve``) there is no
tool: the server's clipboard is not the reader's.

Every copy says what carried it (:meth:`CopyResult.notice`), since only the tool's exit status is
a sign that the text arrived. The text is sanitised first: no escape sequence or control character
reaches the clipboard, whatever a reply held.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from edgechat_tui.core.sanitize import sanitize

__all__ = ["AUTO", "TOOL_TIMEOUT", "Clipboard", "ClipboardTool", "CopyResult", "find_tool"]

TOOL_TIMEOUT = 3.0
"""Seconds a clipboard tool is given before it is killed (xclip waits for an X server that hangs)."""


@dataclass(frozen=True, slots=True)
class ClipboardTool:
    """A system clipboard program and the arguments that make it read the text from stdin."""

    name: str
    argv: tuple[str, ...]


# (program, arguments, the environment variable that must be set for it to work)
_CANDIDATES: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("wl-copy", (), "WAYLAND_DISPLAY"),
    ("xclip", ("-selection", "clipboard", "-in"), "DISPLAY"),
    ("xsel", ("--clipboard", "--input"), "DISPLAY"),
    ("pbcopy", (), None),
    ("clip.exe", (), None),
)


def find_tool(env: Mapping[str, str] | None = None) -> ClipboardTool | None:
    """The first clipboard tool that can work here, looked up on ``env``'s ``PATH``; None if none."""
    env = os.environ if env is None else env
    path = env.get("PATH", "")
    for program, arguments, needs in _CANDIDATES:
        if needs is not None and not env.get(needs):
            continue
        found = shutil.which(program, path=path)
        if found:
            return ClipboardTool(program, (found, *arguments))
    return None


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy did: the text copied, whether OSC 52 was sent, the tool used, why it failed."""

    text: str
    osc52: bool
    tool: str | None = None
    tool_error: str | None = None

    @property
    def carriers(self) -> str:
        """``system clipboard and OSC 52``, ``OSC 52 only``..."""
        if self.tool and not self.tool_error:
            return "system clipboard and OSC 52" if self.osc52 else "system clipboard"
        if not self.osc52:
            return "nothing carried it"
        return "OSC 52 only"

    def notice(self, what: str = "") -> str:
        """``Copied 312 characters of the reply (system clipboard and OSC 52).``"""
        count = len(self.text)
        noun = "character" if count == 1 else "characters"
        of = f" of {what}" if what else ""
        text = f"Copied {count:,} {noun}{of} ({self.carriers})."
        if self.tool_error:
            text += f" The system clipboard ({self.tool}) failed: {self.tool_error}."
        if self.osc52 and not (self.tool and not self.tool_error):
            text += " OSC 52 needs a terminal that lets programs set the clipboard."
        return text


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Final = _Auto()
"""Find the system tool on ``PATH`` (the default)."""


class Clipboard:
    """The app's way to the clipboard. ``app`` gives the running app (for OSC 52), when asked.

    ``tool`` is a :class:`ClipboardTool`, None for OSC 52 alone, or :data:`AUTO` to look one up in
    ``env`` (the process environment by default) at the first copy.
    """

    def __init__(self, app: Callable[[], Any] | None, *, tool: ClipboardTool | _Auto | None = AUTO,
                 env: Mapping[str, str] | None = None, timeout: float = TOOL_TIMEOUT) -> None:
        self._app = app
        self._tool = tool
        self._env = env
        self.timeout = timeout

    @property
    def tool(self) -> ClipboardTool | None:
        """The system tool copies go to (looked up once)."""
        if isinstance(self._tool, _Auto):
            self._tool = find_tool(self._env)
        return self._tool

    async def copy(self, text: str) -> CopyResult:
        """Put ``text`` (sanitised) on the clipboard by every way there is; say which worked."""
        text = sanitize(text)
        app = self._app() if self._app is not None else None
        osc52 = False
        if app is not None:
            app.copy_to_clipboard(text)  # OSC 52 (Textual base64-encodes it)
            osc52 = True
        tool = None if app is not None and getattr(app, "is_web", False) else self.tool
        if tool is None:
            return self.record(CopyResult(text, osc52))
        error = await self._run(tool, text)
        return self.record(CopyResult(text, osc52, tool.name, error))

    def record(self, result: CopyResult) -> CopyResult:
        """Called with every copy's result (a recording clipboard keeps them)."""
        return result

    async def _run(self, tool: ClipboardTool, text: str) -> str | None:
        """Run the tool with ``text`` on stdin; None if it exited 0, else why not."""
        try:
            process = await asyncio.create_subprocess_exec(
                *tool.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        except OSError as error:
            return f"could not start it ({error.strerror or type(error).__name__})"
        try:
            await asyncio.wait_for(process.communicate(text.encode("utf-8")), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return f"no answer in {self.timeout:g} s"
        except (BrokenPipeError, ConnectionResetError):
            await process.wait()
            return "it closed its input early"
        if process.returncode != 0:
            return f"exit status {process.returncode}"
        return None
