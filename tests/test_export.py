"""Exports read back as the conversation they are, whatever the messages hold, and carry no terminal
control: Markdown parsed with markdown-it (CommonMark), JSON parsed back; export files are 0600."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from edgechat_tui.core.messages import Message
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.storage.export import export_conversation, to_json, to_markdown

HOSTILE_REPLIES = {
    "unclosed-backtick-fence": "Here is code:\n```python\nprint('cut off by Esc')",
    "unclosed-tilde-fence": "~~~\nno end",
    "ten-backticks": "``````````\nbetween\n``````````\nand ```` inline ````",
    "headings": "# Top\n## Same level as a turn\n###### six\nTitle\n=====\nOther\n-----",
    "html": "<script>alert(1)</script>\n<details><summary>x</summary>\n\n# inside\n</details>",
    "controls": "\x1b]52;c;ZWNobyBoaQ==\x07clipboard \x1b[2J clear \x9b31m c1 \x7f del "
                "\x90dcs\x1b\\ bell\x07",
    "indented-fence": "   ```\n    ````\n\t```",
    "empty": "",
}
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def conversation(reply: str) -> list[Message]:
    messages = []
    for n in range(3):
        messages.append(Message("user", f"question {n} {reply}", time=f"2025-01-01T00:00:0{n}.000Z"))
        messages.append(Message("assistant", reply, time=f"2025-01-01T00:00:0{n}.500Z", model="@cf/m",
                                stopped=n == 1))
    return messages


def parsed(markdown: str) -> list:
    return MarkdownIt("commonmark").parse(markdown)


@pytest.mark.parametrize("reply", list(HOSTILE_REPLIES.values()), ids=list(HOSTILE_REPLIES))
def test_markdown_reads_back_as_the_conversation_whatever_the_replies_hold(reply: str) -> None:
    messages = conversation(reply)
    markdown = to_markdown("alice", messages, exported="2025-01-01T00:00:09Z", model="@cf/m")
    assert not CONTROLS.search(markdown.replace("\n", "").replace("\t", ""))
    tokens = parsed(markdown)
    headings = [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == ("h1", "edgechat conversation: alice")
    assert [tag for tag, _ in headings[1:]] == ["h2"] * len(messages)  # one per message, nothing more
    assert [text.split(" ·")[0] for _, text in headings[1:]] == ["alice", "assistant (@cf/m)"] * 3
    assert [text.endswith("stopped") for _, text in headings[1:]] == [False, False, False, True, False, False]
    blocks = [t.content for t in tokens if t.type == "fence"]
    assert blocks == [sanitize(m.content).rstrip("\n") + "\n" if m.content else "" for m in messages]
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]


def test_fields_from_a_stored_file_are_plain_text_in_the_markdown() -> None:
    hostile = "2025\n# injected heading\x1b]0;title\x07 <b>bold</b> [link](http://x) `code`\x9b"
    messages = [Message("user", "hi", time=hostile), Message("assistant", "yo", time=hostile, model=hostile)]
    markdown = to_markdown("alice", messages, exported=hostile, model=hostile, title=hostile, chat=hostile)
    assert not CONTROLS.search(markdown.replace("\n", ""))
    tokens = parsed(markdown)
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h1", "h2", "h2"]
    inline = [child.type for t in tokens if t.type == "inline" for child in (t.children or [])]
    assert "html_inline" not in inline and "link_open" not in inline and "code_inline" not in inline
    assert "injected heading" in markdown  # kept, as text


def test_json_export_escapes_del_and_c1_and_reads_back_exactly() -> None:
    text = HOSTILE_REPLIES["controls"] + " é ✓"
    messages = [Message("user", text, time="t\x9b", model=None), Message("assistant", text, model="m\x7f")]
    exported = to_json("alice", messages, exported="now\x85", model="m\x9d")
    assert not CONTROLS.search(exported.replace("\n", "")), "a control character reached the file raw"
    assert "é ✓" in exported  # non-ASCII text stays readable
    data = json.loads(exported)
    assert [m["content"] for m in data["messages"]] == [text, text]
    assert data["messages"][0]["time"] == "t\x9b" and data["model"] == "m\x9d"


@pytest.mark.parametrize("name", ["chat.md", "chat.json"])
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_export_files_are_created_private(tmp_path: Path, name: str, umask: int) -> None:
    old = os.umask(umask)
    try:
        written = export_conversation(tmp_path / name, "alice", conversation("hello"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left behind


def test_the_conversations_title_and_id_are_in_both_exports() -> None:
    messages = conversation("hello")
    markdown = to_markdown("alice", messages, exported="now", model=None, title="Trip *ideas*",
                           chat="01m8tpxfbbm8et")
    assert "Trip \\*ideas\\* · conversation 01m8tpxfbbm8et · exported now · 6 messages" in markdown
    data = json.loads(to_json("alice", messages, exported="now", model=None, title="Trip\x1b[2J",
                              chat="01m8tpxfbbm8et"))
    assert (data["chat"], data["title"]) == ("01m8tpxfbbm8et", "Trip")
    assert "chat" not in json.loads(to_json("alice", messages, exported="now", model=None))
