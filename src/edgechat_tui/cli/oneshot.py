"""One-shot mode: ``edgechat -m TEXT`` (or text piped in) sends one message and prints the reply.

Every way the process is asked to end keeps the same promise as Ctrl+C: Ctrl+C (SIGINT), SIGTERM and
SIGHUP (the terminal closed) stop the reply, keep what arrived (saved, marked stopped) and exit with
128 + the signal's number. A closed stdout (``| head -1``) is not a reason to stop: the reply is read
to its end and saved, and nothing more is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from edgechat_tui.cli.commands import load, user_of
from edgechat_tui.cli.output import PROG, Interrupted, print_json, say, warn
from edgechat_tui.core.errors import EmptyMessage, UsageError
from edgechat_tui.core.sanitize import StreamSanitizer

__all__ = ["Interrupted", "cmd_one_shot"]

# The signals that mean "stop": each ends a turn the way Ctrl+C does.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def read_message(args: argparse.Namespace) -> str:
    if args.message == "-" or args.message is None:
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"The message on stdin is not UTF-8 text (byte {exc.start}).") from None
    try:
        args.message.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 reach Python as lone surrogates: refuse them here, clearly.
        raise UsageError("The message given with -m is not UTF-8 text.",
                         hint="check the terminal's encoding, or pipe the text in with -m -") from None
    return args.message


async def _check_remote(agent) -> None:
    """Learn what the agent offers and who it says the user is, before anything is sent: a --user
    that does not match ``whoami`` fails here. A failure worth retrying (the agent unreachable, busy)
    is left to the turn, which retries what is safe to retry."""
    from edgechat_tui.core.errors import EdgechatError

    try:
        await agent.check()
    except EdgechatError as error:
        if not error.retryable:
            raise


async def _pick_conversation(agent, chat: str | None, new: bool) -> None:
    """``--chat ID`` opens that conversation, ``--new`` starts one (its id to stderr)."""
    if chat is None and not new:
        return  # the most recent conversation
    from edgechat_tui.cli.library import need_library

    conversations = need_library(agent)
    if new:
        created = await conversations.create()
        say(f"{PROG}: new conversation {created.id}\n", err=True)
    else:
        await conversations.open(chat)


def _terminal_reply():
    """A :class:`TerminalReply` for stdout when it is a terminal, else None (plain text)."""
    if not sys.stdout.isatty():
        return None
    from edgechat_tui.cli.terminal_reply import TerminalReply

    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        width, height = size.columns, size.lines
    except (OSError, ValueError):
        width, height = 80, 24
    return TerminalReply(lambda text: say(text, trusted=True), width=width or 80, height=height or 24)


async def _one_shot(settings, user: str, text: str, as_json: bool, user_given: bool | None = None,
                    chat: str | None = None, new: bool = False, raw: bool = False) -> int:
    from edgechat_tui.backends.factory import create_agent
    from edgechat_tui.core.messages import Done, Retrying, TextDelta

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received and task is not None:  # a second signal does not cut the saving short
            received.append(signum)
            task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    agent = create_agent(settings, user, warn=warn, user_given=user_given)
    clean = StreamSanitizer()
    printed = False
    # At a terminal, Markdown rendered block by block (cli/terminal_reply.py); piped, the text as is.
    pretty = None if as_json or raw else _terminal_reply()

    def show(piece: str) -> None:
        if pretty is not None:
            pretty.feed(piece)
        else:
            say(piece, trusted=True)

    def end() -> None:
        if pretty is not None:
            pretty.feed(clean.flush())
            pretty.finish()
        else:
            say(clean.flush() + "\n", trusted=True)
    try:
        if agent.info.mode == "remote":
            await _check_remote(agent)
        await _pick_conversation(agent, chat, new)
        if not agent.info.streams and not as_json and sys.stderr.isatty():
            say("waiting for the agent...\n", err=True)
        async with contextlib.aclosing(agent.send(text)) as events:
            async for event in events:
                if isinstance(event, TextDelta) and not as_json:
                    piece = clean.feed(event.text)
                    if piece:
                        show(piece)
                        printed = True
                elif isinstance(event, Retrying):
                    say(f"{PROG}: {event.reason}; retrying in {event.wait:.1f}s "
                        f"(attempt {event.attempt + 1} of {event.max_attempts})\n", err=True)
                elif isinstance(event, Done):
                    if as_json:
                        usage = event.usage.to_json() if event.usage else None
                        answer = {"message": event.message.content, "messageCount": event.message_count,
                                  "usage": usage}
                        if event.conversation_id is not None:
                            answer["chat"] = event.conversation_id
                        print_json(answer)
                    else:
                        end()
        return 0
    except asyncio.CancelledError:
        if printed:
            end()
        if received:
            raise Interrupted(received[0]) from None
        raise
    except BaseException:
        if printed:
            end()
        raise
    finally:
        with contextlib.suppress(BaseException):
            await agent.aclose()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def cmd_one_shot(args: argparse.Namespace) -> int:
    settings = load(args)
    user = user_of(args, settings)
    text = read_message(args)
    if not text.strip():
        raise EmptyMessage("There is nothing to send: the message is empty.",
                           hint="give -m TEXT or pipe text in")
    return asyncio.run(_one_shot(settings, user, text, args.json, user_given=args.user is not None,
                                 chat=args.chat, new=args.new,
                                 raw=getattr(args, "raw", False)))
