"""A model reply shown as Markdown, streamed in as it arrives.

First version: wraps Textual's ``Markdown`` and its ``MarkdownStream``. The public API is final;
the renderer behind it will be replaced by a faster line-cached one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from edgechat_tui.sanitize import StreamSanitizer


class ReplyMarkdown(Widget):
    """A reply rendered as Markdown; text is sanitised here so no caller can forget to."""

    DEFAULT_CSS = """
    ReplyMarkdown { height: auto; }
    ReplyMarkdown > Markdown { height: auto; margin: 0; }
    """

    def __init__(
        self,
        text: str = "",
        *,
        final: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._sanitizer = StreamSanitizer()
        self._text = self._sanitizer.feed(text)
        self._final = final
        if final:
            self._text += self._sanitizer.flush()
        self._md = Markdown(self._text, open_links=False)
        self._stream: MarkdownStream | None = None

    @property
    def markdown(self) -> str:
        """The text so far, sanitised."""
        return self._text

    @property
    def final(self) -> bool:
        """True once the stream has ended."""
        return self._final

    def compose(self) -> ComposeResult:
        yield self._md

    def append(self, text: str) -> None:
        """Add streamed text."""
        if self._final:
            raise RuntimeError("append() after finish()")
        safe = self._sanitizer.feed(text)
        if not safe:
            return
        self._text += safe
        if self._stream is None:
            self._stream = Markdown.get_stream(self._md)
        self.run_worker(self._stream.write(safe), group="reply-stream")

    def finish(self) -> None:
        """The stream ended: render everything."""
        if self._final:
            return
        self._final = True
        rest = self._sanitizer.flush()
        self._text += rest
        if self._stream is not None:
            stream = self._stream
            self._stream = None

            async def _stop() -> None:
                if rest:
                    await stream.write(rest)
                await stream.stop()

            self.run_worker(_stop(), group="reply-stream")
        elif rest:
            self.run_worker(self._md.append(rest), group="reply-stream")
