"""The four turns as records: what each sends the model (its plan) and what it appends (built under the
lock from the conversation as on disk). Pure: a :class:`ChatState` in, bytes and entries out.

- chat: the question and its reply after the current leaf;
- regenerate: a new reply to the question of reply ``target`` (default: the leaf), a sibling of it;
- edit: a new version of question ``target`` (default: the branch's last question) and its reply;
- continue: text appended to the leaf, a reply that was truncated or stopped (its id stays).

Into an archived conversation every turn is ConversationConflict, as are a regenerate or edit with no
exchange yet and a continue with nothing to continue. Nothing is sent or stored then.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgechat_tui.core.errors import ConversationConflict, MessageNotFound
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_format import (
    AppendEntry,
    Entry,
    MessageEntry,
    MetaEntry,
    encode_append,
    encode_messages,
    new_message_id,
    title_from_words,
)
from edgechat_tui.storage.chat_tree import ChatState, Node

__all__ = ["CONTINUE_PROMPT", "TurnPlan", "plan_turn", "turn_record"]

#: What a continue sends after the cut reply (never stored).
CONTINUE_PROMPT = ("Continue your previous reply exactly where it stopped, without repeating anything or "
                   "adding a preamble.")


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """What a turn sends and where its messages go."""

    action: str
    history: list[Message]  # the branch the model sees before ``prompt``
    prompt: str  # the last user message sent: the new text, the question again, or CONTINUE_PROMPT
    target: str | None  # regenerate: the question's id; edit: the replaced question's parent; continue: reply
    question: Message | None  # regenerate and continue: the question as stored


def _refuse_archived(state: ChatState) -> None:
    if state.archived:
        raise ConversationConflict("This conversation is archived: it can be read, not continued.",
                                   hint=f"restore it first: edgechat chats restore {state.id} "
                                        "(in the chat: /chats archived, then u)")


def _node(state: ChatState, message_id: str) -> Node:
    node = state.nodes.get(message_id)
    if node is None:
        raise MessageNotFound(f"There is no message {message_id} in this conversation.")
    return node


def plan_turn(state: ChatState, action: str, text: str, target: str | None) -> TurnPlan:
    """What ``action`` sends, checked against the conversation; raises before anything is sent."""
    _refuse_archived(state)
    branch = state.branch_nodes()
    if action == "chat":
        return TurnPlan("chat", [n.message for n in branch], text, None, None)
    if action == "regenerate":
        reply = _node(state, target) if target else (branch[-1] if branch else None)
        if reply is None or reply.message.role != "assistant" or reply.parent is None:
            if target:
                raise MessageNotFound(f"Message {target} is not a reply: only a reply can be regenerated.")
            raise ConversationConflict("There is no reply to regenerate yet.", hint="send a message first")
        path = state.branch_nodes(reply.parent)
        question = path[-1]
        return TurnPlan("regenerate", [n.message for n in path[:-1]], question.message.content, question.id,
                        question.message)
    if action == "edit":
        if target:
            question = _node(state, target)
            if question.message.role != "user":
                raise MessageNotFound(f"Message {target} is not a question: only your own messages can be "
                                      "edited.")
        else:
            question = next((n for n in reversed(branch) if n.message.role == "user"), None)
            if question is None:
                raise ConversationConflict("There is no message to edit yet.", hint="send a message first")
        above = state.branch_nodes(question.parent) if question.parent else []
        return TurnPlan("edit", [n.message for n in above], text, question.parent, None)
    if action == "continue":
        leaf = branch[-1] if branch else None
        if leaf is None or leaf.message.role != "assistant" or not (leaf.truncated or leaf.message.stopped):
            raise ConversationConflict("There is no reply to continue: the last reply is complete.",
                                       hint="continue goes on with a reply that was cut short or stopped")
        question = state.nodes[leaf.parent].message if leaf.parent in state.nodes else None
        return TurnPlan("continue", [n.message for n in branch], CONTINUE_PROMPT, leaf.id, question)
    raise ValueError(f"unknown turn action {action!r}")


def turn_record(plan: TurnPlan, question: Message, reply: Message, truncated: bool, *,
                words_title: bool = True):
    """The ``make`` for :meth:`ConversationFile.append`: builds the turn's record under the lock.

    Returns a function of the state on disk giving (the line, its entries); the reply's id is in the
    last MessageEntry (continue: the AppendEntry's ``id``).
    """

    def make(state: ChatState) -> tuple[bytes, list[Entry]]:
        _refuse_archived(state)
        if plan.action == "continue":
            leaf = state.nodes.get(plan.target or "")
            if leaf is None:
                raise MessageNotFound("The reply being continued is no longer in this conversation.")
            added = AppendEntry(leaf.id, reply.content, reply.time, reply.stopped, truncated, reply.usage)
            return encode_append(added), [added]
        first = state.leaf is None and state.title_source is None
        if plan.action == "regenerate":
            entries = [MessageEntry(new_message_id(), plan.target, reply, truncated)]
        else:
            parent = state.leaf if plan.action == "chat" else plan.target
            if parent is not None and parent not in state.nodes:
                raise MessageNotFound("The message this turn follows is no longer in this conversation.")
            question_id = new_message_id()
            entries = [MessageEntry(question_id, parent, question),
                       MessageEntry(new_message_id(), question_id, reply, truncated)]
        meta = None
        if first and words_title and question.content:
            meta = {"title": title_from_words(question.content), "titleSource": "words"}
        line = encode_messages(entries, meta)  # type: ignore[arg-type]
        return line, [*entries, MetaEntry(meta)] if meta else list(entries)

    return make
