"""Signals and pipes in one-shot mode: every way the process is asked to end keeps Ctrl+C's promise.

SIGINT, SIGTERM and SIGHUP during a reply keep what arrived (saved, marked stopped) and exit with
128 + the signal, one quiet line on stderr. A reader that goes away (``| head -1``) is not a reason to
lose the turn: it is read to its end and saved, and the process ends quietly. Real processes, real
signals, real pipes; waits are on what the process printed, never on a duration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from tests.fakes.workers_ai import Reply, Stall
from tests.reliability.figures import FIGURES
from tests.reliability.harness import Workspace, check_output_for_secrets, edgechat_command, read_history

CLASS = "signals: SIGINT, SIGTERM, SIGHUP mid-reply; stdout closed early"
COMMAND = "pytest tests/reliability/test_signals.py"


class Reader:
    """Everything a process writes to one pipe, collected in a thread; wait on what has arrived."""

    def __init__(self, stream) -> None:
        self.data = bytearray()
        self._changed = threading.Condition()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while chunk := os.read(self._stream.fileno(), 4096):
            with self._changed:
                self.data.extend(chunk)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(bytes(self.data)), timeout)

    def join(self) -> bytes:
        self._thread.join(60)
        return bytes(self.data)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_mid_reply_keeps_the_message_and_the_partial_reply(workspace: Workspace, workers_ai,
                                                                      signum: signal.Signals) -> None:
    workers_ai.enqueue(Stall(seconds=120, after_chunks=2, text="first part arrives, then a long pause"))
    proc = subprocess.Popen(edgechat_command(["-m", "tell me a story"]),
                            env=workspace.local_env(workers_ai.api_base),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = Reader(proc.stdout), Reader(proc.stderr)
    assert out.wait_for(lambda d: len(d.strip()) > 0), "no text arrived"
    shown = out.data.decode()
    proc.send_signal(signum)
    code = proc.wait(60)
    stdout, stderr = out.join(), err.join()
    check_output_for_secrets(f"signal {signum.name}", stdout, stderr)
    messages, _ = read_history(workspace.data_dir, "default")
    lost = 0
    if not (len(messages) == 2 and messages[0].content == "tell me a story" and messages[1].stopped
            and messages[1].content.startswith(shown.strip()[:10]) and messages[1].content):
        lost = 1
    FIGURES.add(CLASS, command=COMMAND, tried=1, lost=lost)
    assert code == 128 + signum, (code, stderr)
    assert b"Traceback" not in stderr and stderr.count(b"\n") <= 2, stderr
    assert not lost, messages


def test_a_reader_that_goes_away_ends_quietly_and_the_turn_is_saved(workspace: Workspace, workers_ai) -> None:
    text = "\n".join(f"line {i} of a long answer" for i in range(400))
    workers_ai.enqueue(Reply(text, chunk_size=40, delay=0.002))
    proc = subprocess.Popen(edgechat_command(["-m", "many lines please"]),
                            env=workspace.local_env(workers_ai.api_base),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = Reader(proc.stderr)
    first = proc.stdout.readline()  # what `head -1` reads, then it exits
    proc.stdout.close()
    code = proc.wait(60)
    stderr = err.join()
    messages, _ = read_history(workspace.data_dir, "default")
    lost = int(not (len(messages) == 2 and messages[1].content == text and not messages[1].stopped))
    FIGURES.add(CLASS, command=COMMAND, tried=1, lost=lost)
    assert first.startswith(b"line 0")
    assert code == 0, stderr
    assert stderr == b"", stderr
    assert not lost, messages


def test_history_into_a_closed_pipe_ends_quietly(workspace: Workspace, workers_ai) -> None:
    env = workspace.local_env(workers_ai.api_base)
    for i in range(30):
        workers_ai.enqueue(Reply(f"reply {i}\n" * 20))
        assert subprocess.run(edgechat_command(["-m", f"q{i}"]), env=env, capture_output=True,
                              timeout=60).returncode == 0
    for args in (["history"], ["history", "--format", "json"], ["users"], ["config", "show"]):
        proc = subprocess.Popen(f"{' '.join(edgechat_command(args))} | head -1", shell=True, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, executable="/bin/bash")
        stdout, stderr = proc.communicate(timeout=60)
        assert stdout.count(b"\n") == 1 and b"Traceback" not in stderr and stderr == b"", (args, stderr)


def test_a_signal_before_any_text_keeps_nothing_and_says_so(workspace: Workspace, workers_ai) -> None:
    workers_ai.enqueue(Stall(seconds=120, before_headers=True))
    proc = subprocess.Popen(edgechat_command(["-m", "are you there"]),
                            env=workspace.local_env(workers_ai.api_base),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers_ai.wait_for_requests(1, timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert b"stopped" in stderr and b"Traceback" not in stderr
    messages, _ = read_history(workspace.data_dir, "default")
    assert messages == []  # nothing was shown, so nothing is kept: the message is the user's to resend
