/**
 * One user's conversations in their Durable Object's SQLite database: one row per message, so no
 * stored value grows with the conversation (the seed kept the whole history in one value, which fails
 * at the 2 MB value limit). A reset archives the current conversation and opens a new one; nothing is
 * deleted.
 *
 * Every method is synchronous: SQL on a SQLite-backed object runs in-process, so the schema exists and
 * the current conversation is known as soon as the constructor returns, before any request is served.
 */

import { utf8Length, type ChatMessage } from "./context";
import { ApiError } from "./errors";

export interface StoredMessage {
  role: "user" | "assistant";
  content: string;
  time: string;
  stopped?: boolean;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  archived_at TEXT,
  message_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  content TEXT NOT NULL,
  created_at TEXT NOT NULL,
  stopped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, seq);
`;

export interface ArchiveResult {
  archived: string | null;
}

/** One page of a conversation (docs/protocol.md, `history-pages`). */
export interface HistoryPage {
  /** The page's messages, oldest first. */
  messages: StoredMessage[];
  /** Messages in the conversation the page comes from, all pages together. */
  messageCount: number;
  /** The cursor for the messages just older than this page's oldest, or null when there are none. */
  previous: string | null;
}

/**
 * Where a page starts: just before message `seq` of conversation `conversation`. Opaque to clients
 * ("<conversation>.<seq>"); naming the conversation keeps a client that pages across a reset reading
 * the conversation it started on, never a mix of two.
 */
export interface Cursor {
  conversation: number;
  seq: number;
}

const CURSOR = /^([1-9]\d{0,14})\.([1-9]\d{0,14})$/;

/** The cursor a `before` parameter names, or null when it is not one this agent could have given. */
export function parseCursor(raw: string): Cursor | null {
  const match = CURSOR.exec(raw);
  return match ? { conversation: Number(match[1]), seq: Number(match[2]) } : null;
}

function formatCursor(cursor: Cursor): string {
  return `${cursor.conversation}.${cursor.seq}`;
}

export class ConversationStore {
  private readonly storage: DurableObjectStorage;
  private readonly sql: SqlStorage;
  private current: number;
  private count: number;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
    this.sql = storage.sql;
    this.sql.exec(SCHEMA);
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
      String(SCHEMA_VERSION),
    );
    const open = this.sql
      .exec<{ id: number; message_count: number }>(
        "SELECT id, message_count FROM conversations WHERE archived_at IS NULL ORDER BY id DESC LIMIT 1",
      )
      .toArray()[0];
    if (open) {
      this.current = open.id;
      this.count = open.message_count;
    } else {
      this.current = this.openConversation();
      this.count = 0;
    }
  }

  private openConversation(): number {
    return this.sql
      .exec<{ id: number }>("INSERT INTO conversations (started_at) VALUES (?) RETURNING id", new Date().toISOString())
      .one().id;
  }

  /** Messages in the current conversation, excluding the system prompt (the protocol's `messageCount`). */
  get messageCount(): number {
    return this.count;
  }

  /** The user id this object belongs to; Durable Objects do not know their own name. */
  get owner(): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'owner'").toArray()[0];
    return row ? row.value : null;
  }

  rememberOwner(userId: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('owner', ?) ON CONFLICT (key) DO NOTHING", userId);
  }

  /** The current conversation's messages from the newest back, read lazily as the caller iterates. */
  *newestFirst(): Generator<ChatMessage, void, undefined> {
    const cursor = this.sql.exec<{ role: "user" | "assistant"; content: string }>(
      "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY seq DESC",
      this.current,
    );
    for (const row of cursor) yield { role: row.role, content: row.content };
  }

  /**
   * Stores one exchange atomically: both messages or neither, and the count with them. Called only
   * after the model has answered, so a failed call leaves no trace.
   */
  appendTurn(user: StoredMessage, assistant: StoredMessage): number {
    this.storage.transactionSync(() => {
      const insert = "INSERT INTO messages (conversation_id, role, content, created_at, stopped) VALUES (?, ?, ?, ?, ?)";
      this.sql.exec(insert, this.current, "user", user.content, user.time, 0);
      this.sql.exec(insert, this.current, "assistant", assistant.content, assistant.time, assistant.stopped ? 1 : 0);
      this.sql.exec("UPDATE conversations SET message_count = message_count + 2 WHERE id = ?", this.current);
    });
    this.count += 2;
    return this.count;
  }

  /**
   * A page of a conversation, newest messages first read, returned oldest first: the messages before
   * `before` (the newest of the current conversation when null), at most `limit` of them (no limit
   * when null) and at most `maxBytes` of them as JSON, though never none when there is one to give.
   * Rows are read only as far as the page needs, so a page of a huge conversation costs no more
   * than a page of a small one.
   */
  historyPage(before: Cursor | null, limit: number | null, maxBytes: number): HistoryPage {
    let conversation = this.current;
    let messageCount = this.count;
    if (before !== null) {
      const row = this.sql
        .exec<{ message_count: number }>("SELECT message_count FROM conversations WHERE id = ?", before.conversation)
        .toArray()[0];
      if (!row) {
        throw new ApiError("bad_request", "before is not a cursor this agent gave.", "use the previous value of a history answer");
      }
      conversation = before.conversation;
      messageCount = row.message_count;
    }
    const cursor = this.sql.exec<{ seq: number; role: "user" | "assistant"; content: string; created_at: string; stopped: number }>(
      "SELECT seq, role, content, created_at, stopped FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
      conversation,
      before?.seq ?? Number.MAX_SAFE_INTEGER,
      // One row more than the page holds says whether an older page exists.
      limit === null ? -1 : limit + 1,
    );
    const page: StoredMessage[] = [];
    let bytes = 2; // the brackets of the JSON array
    let oldest: number | null = null;
    let more = false;
    for (const row of cursor) {
      const message: StoredMessage = { role: row.role, content: row.content, time: row.created_at };
      if (row.role === "assistant") message.stopped = row.stopped === 1;
      const size = utf8Length(JSON.stringify(message)) + 1;
      if ((limit !== null && page.length >= limit) || (page.length > 0 && bytes + size > maxBytes)) {
        more = true;
        break;
      }
      page.push(message);
      bytes += size;
      oldest = row.seq;
    }
    page.reverse();
    return {
      messages: page,
      messageCount,
      previous: more && oldest !== null ? formatCursor({ conversation, seq: oldest }) : null,
    };
  }

  /** Archives the current conversation (when it has messages) and opens an empty one. */
  archiveCurrent(): ArchiveResult {
    if (this.count === 0) return { archived: null };
    const archivedId = this.current;
    this.current = this.storage.transactionSync(() => {
      this.sql.exec("UPDATE conversations SET archived_at = ? WHERE id = ?", new Date().toISOString(), archivedId);
      return this.openConversation();
    });
    this.count = 0;
    return { archived: `conversation-${archivedId}` };
  }
}
