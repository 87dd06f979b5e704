"""``/copy [N]``: put a reply's Markdown text on the clipboard, the last one or the Nth from the newest.

N counts replies from the newest: ``/copy`` and ``/copy 1`` copy the last reply, ``/copy 2`` the one
before it, and so on through the whole conversation, mounted or not. What is copied is the reply's
Markdown text (sanitised), the text that pastes back as the same reply; a mouse selection copies
the text as drawn instead. The result says how many characters went where (system clipboard, OSC 52).
"""

from __future__ import annotations

from edgechat_tui.ui.commands.host import CommandHost

__all__ = ["USAGE_HINT", "command_copy", "reply_number"]

USAGE_HINT = "use /copy for the last reply, /copy 2 for the one before it, and so on"


def reply_number(arg: str) -> int | None:
    """N from ``/copy N`` (1 when absent); None when it is not a whole number from 1 on."""
    text = arg.strip()
    if not text:
        return 1
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number >= 1 else None


async def command_copy(host: CommandHost, arg: str) -> None:
    number = reply_number(arg)
    if number is None:
        await host.say_error(f"/copy takes a reply's number, not {arg.strip()!r}.", USAGE_HINT)
        return
    replies = [entry for entry in host.chat_log.entries
               if entry.kind == "assistant" and entry.text and not entry.live]
    if not replies:
        await host.say("There is no reply to copy yet.")
        return
    if number > len(replies):
        count = len(replies)
        await host.say_error(f"There {'is' if count == 1 else 'are'} only {count:,} "
                             f"repl{'y' if count == 1 else 'ies'} to copy.", USAGE_HINT)
        return
    what = "the last reply" if number == 1 else f"reply {number} from the newest"
    result = await host.clipboard.copy(replies[-number].text)
    await host.say(result.notice(what))
