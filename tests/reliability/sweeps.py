"""In-process sweeps over many faults of one kind, shared by the tests (a fixed set) and the soak
(random ones, for as long as it runs): a history cut at every byte, damaged histories, a full disk at
every offset of a write, arbitrary user ids.

Each returns a :class:`Sweep`: how many cases it tried and, for each that went wrong, a line saying
how. A problem is counted as *lost* when turns that should be there are not (or damaged bytes were
not kept), as *unclear* otherwise (a missing warning, an error that does not say what happened).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgechat_tui.core.errors import InvalidUserId, NewerSchemaError, StorageError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.store import HistoryStore, encode_header, encode_turn
from tests.reliability.harness import fill_disk, snapshot

USER = "default"


def _quiet(_warning: str) -> None:
    """Warnings already judged once (or not the point of the check) are not printed again."""


@dataclass
class Sweep:
    tried: int = 0
    lost: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.lost + self.unclear


# --- histories ----------------------------------------------------------------------------------------


def turn(n: int, text: str | None = None) -> tuple[Message, Message]:
    return (Message(role="user", content=f"turn {n}"),
            Message(role="assistant", content=text if text is not None else f"reply {n} " + "é" * (n % 7)))


def history_bytes(*turns: tuple[Message, Message], user: str = USER) -> bytes:
    return encode_header(user) + b"".join(encode_turn(u, r) for u, r in turns)


def user_turns(messages: list[Message]) -> list[str]:
    return [m.content for m in messages if m.role == "user"]


def all_bytes_kept(data_dir: Path, original: bytes) -> bool:
    """The damaged file's bytes are somewhere in the data dir: in place, aside, or as a torn tail's copy."""
    files = snapshot(data_dir)
    if any(content == original for content in files.values()):
        return True
    # A torn tail is cut off and kept on its own: the file's head plus that copy are the original.
    tails = [content for name, content in files.items() if ".torn-" in name]
    head = files.get(f"{USER}.jsonl", b"")
    return any(original.startswith(head[: len(original) - len(tail)]) and original.endswith(tail)
               for tail in tails)


def random_text(rng: random.Random, length: int) -> str:
    """Text a model might write, with the characters that make JSON and UTF-8 interesting."""
    alphabet = "abc xyz\n\t\"\\/{}[]:,é✓€😀\u0301\u202e\x00\x1b"
    return "".join(rng.choice(alphabet) for _ in range(length))


def truncation_sweep(workdir: Path, turns: list[tuple[Message, Message]], *, step: int = 1) -> Sweep:
    """Cut the history of ``turns`` at every ``step``-th byte of its last record; each must load with the
    turns before it, warn of the torn tail, keep its bytes aside, and take the next turn after them."""
    sweep = Sweep()
    whole = history_bytes(*turns)
    last_start = len(history_bytes(*turns[:-1]))
    before = [u.content for u, _ in turns[:-1]]
    for cut in [*range(last_start, len(whole), step), len(whole)]:
        sweep.tried += 1
        data_dir = Path(tempfile.mkdtemp(dir=workdir, prefix=f"cut{cut}-"))
        try:
            (data_dir / f"{USER}.jsonl").write_bytes(whole[:cut])
            warnings: list[str] = []
            try:
                messages = HistoryStore(data_dir, USER, warn=warnings.append).load()
            except Exception as exc:
                sweep.lost.append(f"cut at {cut}: load raised {type(exc).__name__}: {exc}")
                continue
            expected = [*before, turns[-1][0].content] if cut == len(whole) else before
            if user_turns(messages) != expected:
                sweep.lost.append(f"cut at {cut}: loaded {user_turns(messages)[-3:]}")
            torn = last_start < cut < len(whole)
            if torn and not any("incomplete" in w for w in warnings):
                sweep.unclear.append(f"cut at {cut}: no warning about the incomplete entry")
            store = HistoryStore(data_dir, USER, warn=warnings.append)
            store.load()
            store.append_turn(*turn(9999))
            if user_turns(HistoryStore(data_dir, USER, warn=_quiet).load()) != [*expected, "turn 9999"]:
                sweep.lost.append(f"cut at {cut}: the next turn was not saved after the readable ones")
            kept = [path.read_bytes() for path in data_dir.glob("*.torn-*")]
            if torn and whole[last_start:cut] not in kept:
                sweep.lost.append(f"cut at {cut}: the cut bytes were not kept")
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return sweep


def damaged_files(rng: random.Random, variants: int = 6) -> list[tuple[str, bytes, list[str]]]:
    """(name, file bytes, the turns that must survive) for each kind of damage."""
    good = [turn(1), turn(2), turn(3)]
    header = encode_header(USER)
    lines = [encode_turn(*t) for t in good]
    cases = []
    for i in range(variants):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        flat = noise.replace(b"\n", b"")
        cases.append((f"random-bytes-{i}", noise, []))
        middle = header + lines[0] + flat + b"\n" + lines[1] + lines[2]
        cases.append((f"random-line-in-the-middle-{i}", middle, ["turn 1", "turn 2", "turn 3"]))
        cases.append((f"random-lines-at-the-end-{i}", header + b"".join(lines) + flat + b"\n" + b"garbage\n",
                      ["turn 1", "turn 2", "turn 3"]))
        flipped = bytearray(header + b"".join(lines))
        at = rng.randrange(len(header), len(flipped))
        if flipped[at] != 0x0A:
            flipped[at] = rng.choice([0xFF, 0x00, 0x22, 0x7B, 0xC3])
            cases.append((f"one-byte-changed-{i}", bytes(flipped), None))  # None: whatever stays readable
    bad_utf8 = lines[1].replace(b"reply 2", b"reply \xff\xfe 2")
    cases += [
        ("invalid-utf8-in-a-turn", header + lines[0] + bad_utf8 + lines[2], ["turn 1", "turn 3"]),
        ("invalid-utf8-in-the-header", header.replace(b"history", b"hist\xc3\x28ory", 1) + b"".join(lines),
         ["turn 1", "turn 2", "turn 3"]),
        ("no-header", b"".join(lines), ["turn 1", "turn 2", "turn 3"]),
        ("json-but-not-turns", header + b'{"messages": 5}\n[1,2]\n"text"\n' + lines[0], ["turn 1"]),
        ("nul-bytes", header + lines[0] + b"\0" * 512 + b"\n" + lines[1], ["turn 1", "turn 2"]),
        ("deeply-nested-json", header + lines[0] + b"[" * 100_000 + b"\n" + lines[1], ["turn 1", "turn 2"]),
        ("empty-file", b"", []),
        ("only-newlines", b"\n\n\n", []),
        ("newer-schema", header.replace(b'"schema": 1', b'"schema": 7') + b"".join(lines), None),
    ]
    return cases


def damage_sweep(workdir: Path, rng: random.Random, variants: int = 6) -> Sweep:
    """Each damaged file must load (never raise), keep every readable turn, keep the damaged bytes
    somewhere, warn, and take the next turn after the readable ones."""
    sweep = Sweep()
    for name, content, survivors in damaged_files(rng, variants):
        sweep.tried += 1
        data_dir = Path(tempfile.mkdtemp(dir=workdir, prefix="damage-"))
        try:
            (data_dir / f"{USER}.jsonl").write_bytes(content)
            warnings: list[str] = []
            if name == "newer-schema":
                # Not damage: a file this version cannot read is refused with a clear error, untouched.
                try:
                    HistoryStore(data_dir, USER, warn=warnings.append).load()
                    sweep.unclear.append(f"{name}: a newer format was read as if it were this one")
                except NewerSchemaError as exc:
                    if "newer" not in exc.message:
                        sweep.unclear.append(f"{name}: unclear error {exc.message!r}")
                left = {name: data for name, data in snapshot(data_dir).items() if name != f"{USER}.lock"}
                if left != {f"{USER}.jsonl": content}:
                    sweep.lost.append(f"{name}: a file of a newer format was changed")
                continue
            try:
                messages = HistoryStore(data_dir, USER, warn=warnings.append).load()
            except Exception as exc:
                sweep.lost.append(f"{name}: load raised {type(exc).__name__}: {exc}")
                continue
            readable = user_turns(messages)
            if survivors is not None and readable != survivors:
                sweep.lost.append(f"{name}: kept {readable}, expected {survivors}")
            if not all_bytes_kept(data_dir, content):
                sweep.lost.append(f"{name}: the damaged bytes were not kept anywhere")
            # A changed byte that leaves valid JSON cannot be seen (there is no checksum): only the
            # cases with known survivors must warn.
            if survivors is not None and content.strip() and not warnings:
                sweep.unclear.append(f"{name}: damage without a warning")
            store = HistoryStore(data_dir, USER, warn=_quiet)
            store.load()
            store.append_turn(*turn(9))
            if user_turns(HistoryStore(data_dir, USER, warn=_quiet).load()) != [*readable, "turn 9"]:
                sweep.lost.append(f"{name}: the next turn was not saved after the readable ones")
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return sweep


# --- a full disk --------------------------------------------------------------------------------------


def _empty(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def disk_full_sweep(disk: Path, pads: list[int], *, reply_length: int = 4200) -> Sweep:
    """On the small file system ``disk`` (a tmpfs): for each pad, a history whose last page has a
    different room left, the disk filled, then a turn longer than a page. The write is cut short by
    ENOSPC at a different offset each time; the history must be left as it was, the error must say the
    disk is full, and once space is freed the next turn must be saved."""
    sweep = Sweep()
    for pad in pads:
        _empty(disk)
        data_dir = disk / "data"
        store = HistoryStore(data_dir, "full")
        store.append_turn(Message(role="user", content="first"), Message(role="assistant", content="p" * pad))
        original = store.path.read_bytes()
        filler = fill_disk(disk)
        sweep.tried += 1
        try:
            store.append_turn(Message(role="user", content="second"),
                              Message(role="assistant", content="r" * reply_length))
            sweep.unclear.append(f"pad {pad}: a turn longer than the room left was saved on a full disk")
            fitted = True
        except StorageError as exc:
            fitted = False
            if "disk is full" not in exc.message:
                sweep.unclear.append(f"pad {pad}: unclear error {exc.message!r}")
            if store.path.read_bytes() != original:
                sweep.lost.append(f"pad {pad}: the failed write changed the file")
        filler.unlink()
        warnings: list[str] = []
        fresh = HistoryStore(data_dir, "full", warn=warnings.append)
        expected = ["first", "second"] if fitted else ["first"]
        if user_turns(fresh.load()) != expected or warnings:
            sweep.lost.append(f"pad {pad}: after the fault the history holds other turns ({warnings})")
        fresh.append_turn(Message(role="user", content="third"), Message(role="assistant", content="ok"))
        if user_turns(HistoryStore(data_dir, "full").load()) != [*expected, "third"]:
            sweep.lost.append(f"pad {pad}: a turn saved after the fault is missing")
        leftovers = [p.name for p in data_dir.iterdir() if p.name.endswith(".tmp")]
        if leftovers:
            sweep.lost.append(f"pad {pad}: temp files left: {leftovers}")
    return sweep


# --- user ids -----------------------------------------------------------------------------------------

PIECES = ["/", "\\", ".", "..", "\x00", " ", "\t", "\n", ":", "*", "?", '"', "<", ">", "|", "~", "$", "%2e",
          "%2f", "con", "NUL", "com1", "lpt9", "aux", "prn", "ａ", "а", "\u200b", "\u0301", "\u212a",
          "\u0130", "\u202e", "\x1b", "\x85", "\ud800", "a", "B", "7", "-", "_", "alice", "x" * 30]


def random_user_id(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "".join(rng.choice("abcXYZ019._-") for _ in range(rng.randrange(1, 70)))
    if rng.random() < 0.5:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(0, 12)))
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 8)))


def user_id_sweep(workdir: Path, rng: random.Random, count: int) -> Sweep:
    """Random user ids: each refused before any file is touched, or every file made for it lies directly
    in the data dir with a name that starts with the id."""
    sweep = Sweep()
    for _ in range(count):
        user = random_user_id(rng)
        sweep.tried += 1
        root = Path(tempfile.mkdtemp(dir=workdir, prefix="uid-"))
        data_dir = root / "data"
        try:
            try:
                validate_user_id(user)
            except InvalidUserId:
                try:
                    HistoryStore(data_dir, user)
                    sweep.lost.append(f"{user!r}: refused by the validator but not by the store")
                except InvalidUserId:
                    pass
                if any(root.iterdir()):
                    sweep.lost.append(f"{user!r}: a refused id touched the disk")
                continue
            store = HistoryStore(data_dir, user)
            store.append_turn(*turn(1))
            store.archive()
            for path in root.rglob("*"):
                inside = path.parent == data_dir and path.name.startswith(user)
                if path != data_dir and not inside:
                    sweep.lost.append(f"{user!r}: made {path.relative_to(root)}")
                if not os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
                    sweep.lost.append(f"{user!r}: {path} resolves outside")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return sweep
