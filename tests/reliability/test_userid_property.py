"""A user id can never name a file outside the data dir: a property over arbitrary strings.

For any string, either it is refused (InvalidUserId, by the validator and by every constructor that
takes a user id, with no file touched), or every file edgechat makes for it (history, lock, temp,
torn, archive) is a direct child of the data dir whose name starts with the id itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgechat_tui.backends.remote.agent import RemoteAgent
from edgechat_tui.core.errors import InvalidUserId
from edgechat_tui.core.messages import Message
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.store import HistoryStore
from tests.reliability.figures import FIGURES

CLASS = "security: user ids never name a file outside the data dir (property)"
COMMAND = "pytest tests/reliability/test_userid_property.py"

# Pieces of path tricks: separators, dots, device names, look-alikes, invisible and control characters.
_PIECES = ["/", "\\", ".", "..", "\x00", " ", "\t", "\n", ":", "*", "?", '"', "<", ">", "|", "~", "$", "%2e",
           "%2f", "con", "NUL", "com1", "lpt9", "aux", "prn", "ａ", "а", "\u200b", "\u0301", "\u212a",
           "\u0130", "\u202e", "\x1b", "\x85", "\ud800", "a", "B", "7", "-", "_", "alice", "x" * 30]
user_ids = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
    st.from_regex(r"[A-Za-z0-9._\-]{1,70}", fullmatch=True),
)


def _tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


class _Count:
    tried = valid = escapes = 0


@pytest.fixture(scope="module")
def count():
    counter = _Count()
    yield counter
    FIGURES.add(CLASS, command=COMMAND, tried=counter.tried, lost=counter.escapes,
                note=f"{counter.valid} of them valid ids")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=user_ids)
def test_a_user_id_never_names_a_file_outside_the_data_dir(user: str, count: _Count) -> None:
    count.tried += 1
    with tempfile.TemporaryDirectory() as root_name:
        root = Path(root_name)
        data_dir = root / "home" / "data"
        try:
            valid = validate_user_id(user)
        except InvalidUserId:
            with pytest.raises(InvalidUserId):
                HistoryStore(data_dir, user)
            with pytest.raises(InvalidUserId):
                RemoteAgent("http://127.0.0.1:9", user)
            assert _tree(root) == set(), "a refused id touched the disk"
            return
        count.valid += 1
        assert valid == user, "a valid id must be used exactly as given, never normalised"
        store = HistoryStore(data_dir, user)
        for path in (store.path, store.lock_path):
            assert path.parent == data_dir
            assert os.path.realpath(path).startswith(os.path.realpath(data_dir) + os.sep)
        store.append_turn(Message(role="user", content="hi"), Message(role="assistant", content="hello"))
        with open(store.path, "ab") as handle:
            handle.write(b'{"messages": [')  # a torn tail: the next turn keeps it in a sidecar file
        store.append_turn(Message(role="user", content="again"), Message(role="assistant", content="yes"))
        store.archive()
        made = _tree(root)
        outside = sorted(name for name in made if not name.startswith("home/data") and name != "home")
        strays = sorted(name for name in made if name.startswith("home/data/")
                        and not name.removeprefix("home/data/").startswith(user))
        nested = sorted(name for name in made if name.count("/") > 2)
        if outside or strays or nested:
            count.escapes += 1
        assert not outside and not strays and not nested, (outside, strays, nested)
