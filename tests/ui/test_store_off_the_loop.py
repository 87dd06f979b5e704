"""The event loop never waits on the disk or a lock: another process holds the profile's lock while the
real app (``EdgechatApp`` on the loopback Workers AI) runs a turn, and the app stays alive throughout."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import textwrap

from tests.ui.conftest import SIZE, make_app, send, type_text, wait_ready, wait_until, write_history

# The holder keeps the lock until the test says so (a line on its stdin); HOLD_LIMIT only ends a broken
# run. An app that waited on the lock on its loop would stall the whole of that time (the test's own
# steps run on the same loop, so it could not even press Esc); a loop that waits on nothing never
# pauses for more than a scheduling hiccup, however loaded the machine. MAX_GAP lies between the two.
HOLD_LIMIT = 60.0
MAX_GAP = 10.0

# Another edgechat process saving a turn on a slow disk: it takes the lock, appends a turn, tells the test
# it holds the lock, and keeps it until told to let go.
_HOLDER = textwrap.dedent("""
    import fcntl, os, select, sys
    from pathlib import Path
    from edgechat_tui.core.messages import Message
    from edgechat_tui.storage.chat_format import MessageEntry, encode_messages, new_message_id
    data_dir, seconds = Path(sys.argv[1]), float(sys.argv[2])
    library = data_dir / "alice.chats"
    fd = os.open(library / "profile.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    [conversation] = library.glob("*.jsonl")
    question = MessageEntry(new_message_id(), None, Message("user", "from elsewhere"))
    reply = MessageEntry(new_message_id(), question.id, Message("assistant", "noted"))
    with open(conversation, "ab") as history:
        history.write(encode_messages([question, reply]))
    print("locked", flush=True)
    select.select([sys.stdin], [], [], seconds)
""")


async def test_a_lock_held_by_another_process_never_stalls_the_app(settings, fake) -> None:
    write_history(settings.data_dir, "alice", [("earlier", "reply")])
    app = make_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_ready(pilot)
        loop = asyncio.get_running_loop()
        ticks: list[float] = []
        timer = app.set_interval(0.01, lambda: ticks.append(loop.time()))
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(settings.data_dir), str(HOLD_LIMIT)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            # Condition, not duration: the child says when it holds the lock.
            assert await asyncio.to_thread(holder.stdout.readline) == "locked\n"
            ticks.clear()
            await send(pilot, "hello")
            await wait_until(pilot, lambda: app.chat.turn is not None, what="the turn to start")
            # The turn now waits for the lock (its refresh must read the other process's turn).
            await type_text(pilot, "abc")
            await wait_until(pilot, lambda: app.chat.prompt.text == "abc", what="the keys to be handled")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.chat.turn is None, what="Esc to stop the turn")
            await wait_until(pilot, lambda: len(ticks) > 20, what="the loop to tick while the lock is held")
            still_held = holder.poll() is None
            holder.stdin.write("release\n")
            holder.stdin.flush()
            await asyncio.to_thread(holder.wait, 30)
            await pilot.pause(0.05)
        finally:
            holder.kill()
            holder.wait()
            timer.stop()
        gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
        assert still_held, "the lock was released before Esc acted: the test proved nothing"
        assert len(ticks) > 20 and max(gaps) < MAX_GAP, f"the event loop stalled {max(gaps):.3f} s"
        assert fake.run_requests == []  # stopped before anything was sent
        await wait_ready(pilot)
