/**
 * One user's conversations in their Durable Object's SQLite database (docs/protocol.md,
 * `conversations`): one row per conversation and one per message, so no stored value grows with a
 * conversation (the seed kept the whole history in one value, which fails at the 2 MB value limit).
 *
 * A conversation is a tree of messages: each message names its parent (null for the first), so a
 * regenerated reply or an edited question is a sibling of the one it replaces, which is kept. The
 * conversation's `leaf` is the newest message of the branch it shows; the branch is the path from the
 * leaf up to the root, and only it is sent to the model. A reset archives the most recent
 * conversation; a delete moves one to the trash, purged after TRASH_DAYS. An FTS5 index over the
 * messages answers searches (a LIKE scan where FTS5 is missing).
 *
 * Every method is synchronous: SQL on a SQLite-backed object runs in-process, so the schema exists
 * (and an older database has been migrated) as soon as the constructor returns.
 */

import { utf8Length, type ChatMessage } from "./context";
import { ApiError } from "./errors";
import { conversationId, conversationIdTime, ftsQuery, makeSnippet, queryTerms, titleFromWords } from "./library";

export interface StoredMessage {
  role: "user" | "assistant";
  content: string;
  time: string;
  stopped?: boolean;
}

/** A message as the history answers it. */
export interface WireMessage extends StoredMessage {
  id: number;
  parent: number | null;
  /** The ids of this message and its siblings (same parent), oldest first. */
  siblings: number[];
  /** An assistant reply that reached max_tokens: `continue` can go on with it. */
  truncated?: boolean;
}

const SCHEMA_VERSION = 2;

// Version 1: one open conversation at a time, messages in a line.
const SCHEMA_V1 = `
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

// Version 2: many conversations (public id, title, times, leaf, trash), messages in a tree.
// `message_count` is now the length of the current branch (the depth of its leaf).
const MIGRATE_V2 = `
ALTER TABLE conversations ADD COLUMN public_id TEXT;
ALTER TABLE conversations ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN title_source TEXT;
ALTER TABLE conversations ADD COLUMN updated_at TEXT;
ALTER TABLE conversations ADD COLUMN leaf INTEGER;
ALTER TABLE conversations ADD COLUMN deleted_at TEXT;
ALTER TABLE messages ADD COLUMN parent INTEGER;
ALTER TABLE messages ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX IF NOT EXISTS conversations_by_public_id ON conversations (public_id);
CREATE INDEX IF NOT EXISTS messages_by_parent ON messages (conversation_id, parent, seq);
`;

const FTS_TABLE =
  "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(content, content='messages', content_rowid='seq', " +
  "tokenize='unicode61 remove_diacritics 2', prefix='2 3')";

/** A conversation's row, as the store uses it. */
export interface ConversationRow {
  /** The row id: internal, named only inside history cursors. */
  internal: number;
  id: string;
  title: string;
  titleSource: "words" | "model" | "user" | null;
  created: string;
  updated: string;
  archived: boolean;
  deletedAt: string | null;
  leaf: number | null;
  messageCount: number;
}

/** A conversation as the protocol shows it. */
export interface ConversationInfo {
  id: string;
  title: string;
  messageCount: number;
  created: string;
  updated: string;
  archived: boolean;
  /** The newest message of the current branch, or null for an empty conversation. */
  leaf: number | null;
  /** Set for a conversation in the trash: when it was deleted, and when it will be purged. */
  deletedAt?: string;
  purgeAt?: string;
}

type RawConversation = {
  id: number;
  public_id: string;
  title: string;
  title_source: string | null;
  started_at: string;
  updated_at: string;
  archived_at: string | null;
  deleted_at: string | null;
  leaf: number | null;
  message_count: number;
};

const CONVERSATION_COLUMNS =
  "id, public_id, title, title_source, started_at, updated_at, archived_at, deleted_at, leaf, message_count";

function toRow(raw: RawConversation): ConversationRow {
  return {
    internal: raw.id,
    id: raw.public_id,
    title: raw.title,
    titleSource: raw.title_source as ConversationRow["titleSource"],
    created: raw.started_at,
    updated: raw.updated_at,
    archived: raw.archived_at !== null,
    deletedAt: raw.deleted_at,
    leaf: raw.leaf,
    messageCount: raw.message_count,
  };
}

/** A message row. */
export interface MessageRow {
  seq: number;
  conversation: number;
  role: "user" | "assistant";
  content: string;
  time: string;
  stopped: boolean;
  truncated: boolean;
  parent: number | null;
  depth: number;
}

type RawMessage = {
  seq: number;
  conversation_id: number;
  role: "user" | "assistant";
  content: string;
  created_at: string;
  stopped: number;
  truncated: number;
  parent: number | null;
  depth: number;
};

const MESSAGE_COLUMNS = "seq, conversation_id, role, content, created_at, stopped, truncated, parent, depth";

function toMessage(raw: RawMessage): MessageRow {
  return {
    seq: raw.seq,
    conversation: raw.conversation_id,
    role: raw.role,
    content: raw.content,
    time: raw.created_at,
    stopped: raw.stopped === 1,
    truncated: raw.truncated === 1,
    parent: raw.parent,
    depth: raw.depth,
  };
}

/** One page of a conversation's current branch (docs/protocol.md, `history-pages`). */
export interface HistoryPage {
  /** The page's messages, oldest first. */
  messages: WireMessage[];
  /** Messages on the branch the page comes from, all pages together. */
  messageCount: number;
  /** The cursor for the messages just older than this page's oldest, or null when there are none. */
  previous: string | null;
}

/**
 * Where a page starts: just above message `seq` (its parent and up) in conversation `conversation`.
 * Opaque to clients ("<conversation>.<seq>"); it names a message, so a page keeps following the branch
 * it started on even when new turns come or another branch is chosen, and never mixes conversations.
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

export function noSuchConversation(id: string): ApiError {
  return new ApiError("conversation_not_found", "No such conversation.", `${id} is not a conversation of this user`);
}

export interface SearchHit {
  chat: string;
  title: string;
  role: "user" | "assistant";
  time: string;
  snippet: string;
  highlights: [number, number][];
  messageId: number;
  archived: boolean;
}

export type SearchEngine = "fts5" | "like";

export class ConversationStore {
  private readonly storage: DurableObjectStorage;
  private readonly sql: SqlStorage;
  /** The milliseconds of the newest conversation id given: ids stay in creation order within a user. */
  private lastIdMs = 0;
  readonly engine: SearchEngine;

  constructor(storage: DurableObjectStorage, preferLike = false) {
    this.storage = storage;
    this.sql = storage.sql;
    let fts = !preferLike;
    storage.transactionSync(() => {
      this.sql.exec(SCHEMA_V1);
      this.sql.exec("INSERT INTO meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING");
      const version = Number(this.meta("schema_version"));
      if (version < 2) this.migrateToV2();
      if (fts) {
        try {
          const existed = this.meta("fts") === "1";
          this.sql.exec(FTS_TABLE);
          // Built once from whatever is stored (a migrated conversation's messages), then kept in step.
          if (!existed) this.sql.exec("INSERT INTO message_fts (message_fts) VALUES ('rebuild')");
          this.setMeta("fts", "1");
        } catch {
          fts = false;
        }
      }
      if (!fts && this.meta("fts") === "1") {
        // An index that would not be kept in step any more: drop it (a later start rebuilds it).
        this.sql.exec("DROP TABLE IF EXISTS message_fts");
        this.sql.exec("DELETE FROM meta WHERE key = 'fts'");
      }
    });
    this.engine = fts ? "fts5" : "like";
    const newest = this.sql
      .exec<{ public_id: string | null }>("SELECT MAX(public_id) AS public_id FROM conversations")
      .one().public_id;
    if (newest) this.lastIdMs = conversationIdTime(newest);
  }

  private meta(key: string): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row ? row.value : null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  /**
   * Version 1 to 2, in the constructor's transaction (all of it or none): every conversation that
   * holds messages, the open one and the archived ones, becomes a conversation with an id, a title
   * from its first words and its messages in a line (each the parent of the next); empty ones, which
   * hold nothing, are dropped. Nothing else is touched, and nothing is lost.
   */
  private migrateToV2(): void {
    this.sql.exec(MIGRATE_V2);
    this.sql.exec(
      "UPDATE messages SET parent = r.prev, depth = r.n FROM (SELECT seq, " +
        "LAG(seq) OVER (PARTITION BY conversation_id ORDER BY seq) AS prev, " +
        "ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY seq) AS n FROM messages) AS r " +
        "WHERE messages.seq = r.seq",
    );
    this.sql.exec("DELETE FROM conversations WHERE id NOT IN (SELECT DISTINCT conversation_id FROM messages)");
    const rows = this.sql
      .exec<{ id: number; started_at: string }>("SELECT id, started_at FROM conversations ORDER BY id")
      .toArray();
    let lastMs = 0;
    for (const row of rows) {
      const first = this.sql
        .exec<{ content: string }>(
          "SELECT content FROM messages WHERE conversation_id = ? AND role = 'user' ORDER BY seq LIMIT 1",
          row.id,
        )
        .toArray()[0];
      const last = this.sql
        .exec<{ seq: number; created_at: string; n: number }>(
          "SELECT seq, created_at, (SELECT COUNT(*) FROM messages WHERE conversation_id = ?) AS n " +
            "FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1",
          row.id,
          row.id,
        )
        .one();
      const started = Date.parse(row.started_at);
      lastMs = Math.max(Number.isNaN(started) ? 0 : started, lastMs + 1);
      this.sql.exec(
        "UPDATE conversations SET public_id = ?, title = ?, title_source = 'words', updated_at = ?, leaf = ?, " +
          "message_count = ? WHERE id = ?",
        conversationId(lastMs),
        first ? titleFromWords(first.content) : "",
        last.created_at,
        last.seq,
        last.n,
        row.id,
      );
    }
    this.setMeta("schema_version", String(SCHEMA_VERSION));
  }

  /** The user id this object belongs to; Durable Objects do not know their own name. */
  get owner(): string | null {
    return this.meta("owner");
  }

  rememberOwner(userId: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('owner', ?) ON CONFLICT (key) DO NOTHING", userId);
  }

  // --- conversations ---------------------------------------------------------------------------------

  private byPublicId(id: string): ConversationRow | null {
    const raw = this.sql
      .exec<RawConversation>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE public_id = ?`, id)
      .toArray()[0];
    return raw ? toRow(raw) : null;
  }

  byInternal(internal: number): ConversationRow | null {
    const raw = this.sql
      .exec<RawConversation>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE id = ?`, internal)
      .toArray()[0];
    return raw ? toRow(raw) : null;
  }

  /**
   * The conversation `id` names, or 404 `conversation_not_found`. One in the trash is found only with
   * `trash` (to restore or purge it): everything else treats it as gone.
   */
  require(id: string, { trash = false }: { trash?: boolean } = {}): ConversationRow {
    const row = this.byPublicId(id);
    if (!row || (row.deletedAt !== null && !trash)) throw noSuchConversation(id);
    return row;
  }

  /** The most recent conversation (newest activity) that is neither archived nor in the trash. */
  mostRecent(): ConversationRow | null {
    const raw = this.sql
      .exec<RawConversation>(
        `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE archived_at IS NULL AND deleted_at IS NULL ` +
          "ORDER BY updated_at DESC, public_id DESC LIMIT 1",
      )
      .toArray()[0];
    return raw ? toRow(raw) : null;
  }

  /** A new, empty conversation. */
  create(title = "", titleSource: ConversationRow["titleSource"] = null): ConversationRow {
    const now = Date.now();
    this.lastIdMs = Math.max(now, this.lastIdMs + 1);
    const id = conversationId(this.lastIdMs);
    const time = new Date(now).toISOString();
    const internal = this.sql
      .exec<{ id: number }>(
        "INSERT INTO conversations (started_at, public_id, title, title_source, updated_at, message_count) " +
          "VALUES (?, ?, ?, ?, ?, 0) RETURNING id",
        time,
        id,
        title,
        titleSource,
        time,
      )
      .one().id;
    return this.byInternal(internal)!;
  }

  info(row: ConversationRow, trashDays: number): ConversationInfo {
    const info: ConversationInfo = {
      id: row.id,
      title: row.title,
      messageCount: row.messageCount,
      created: row.created,
      updated: row.updated,
      archived: row.archived,
      leaf: row.leaf,
    };
    if (row.deletedAt !== null) {
      info.deletedAt = row.deletedAt;
      info.purgeAt = new Date(Date.parse(row.deletedAt) + trashDays * 86_400_000).toISOString();
    }
    return info;
  }

  /** Conversations newest activity first: active ones, archived ones, or those in the trash. */
  list(which: "active" | "archived" | "trash"): ConversationRow[] {
    const where =
      which === "trash"
        ? "deleted_at IS NOT NULL"
        : which === "archived"
          ? "deleted_at IS NULL AND archived_at IS NOT NULL"
          : "deleted_at IS NULL AND archived_at IS NULL";
    return this.sql
      .exec<RawConversation>(
        `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE ${where} ORDER BY updated_at DESC, public_id DESC`,
      )
      .toArray()
      .map(toRow);
  }

  setTitle(row: ConversationRow, title: string, source: NonNullable<ConversationRow["titleSource"]>): void {
    this.sql.exec("UPDATE conversations SET title = ?, title_source = ? WHERE id = ?", title, source, row.internal);
  }

  setArchived(row: ConversationRow, archived: boolean): void {
    this.sql.exec(
      "UPDATE conversations SET archived_at = ? WHERE id = ?",
      archived ? new Date().toISOString() : null,
      row.internal,
    );
  }

  setDeleted(row: ConversationRow, deleted: boolean): void {
    this.sql.exec("UPDATE conversations SET deleted_at = ? WHERE id = ?", deleted ? new Date().toISOString() : null, row.internal);
  }

  /** Deletes a conversation and its messages for good (and their search index entries). */
  purge(row: ConversationRow): void {
    this.storage.transactionSync(() => {
      if (this.engine === "fts5") {
        this.sql.exec(
          "INSERT INTO message_fts (message_fts, rowid, content) SELECT 'delete', seq, content FROM messages WHERE conversation_id = ?",
          row.internal,
        );
      }
      this.sql.exec("DELETE FROM messages WHERE conversation_id = ?", row.internal);
      this.sql.exec("DELETE FROM conversations WHERE id = ?", row.internal);
    });
  }

  /** Purges the conversations deleted more than `days` days ago; returns how many. */
  purgeExpired(nowMs: number, days: number): number {
    const cutoff = new Date(nowMs - days * 86_400_000).toISOString();
    const expired = this.sql
      .exec<RawConversation>(`SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?`, cutoff)
      .toArray()
      .map(toRow);
    for (const row of expired) this.purge(row);
    return expired.length;
  }

  // --- messages and branches ---------------------------------------------------------------------------

  message(seq: number): MessageRow | null {
    const raw = this.sql.exec<RawMessage>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq = ?`, seq).toArray()[0];
    return raw ? toMessage(raw) : null;
  }

  /** The message `seq` of conversation `row`, or 404 (never one of another conversation). */
  requireMessage(row: ConversationRow, seq: number): MessageRow {
    const message = this.message(seq);
    if (!message || message.conversation !== row.internal) {
      throw new ApiError("message_not_found", "No such message in this conversation.", `message ${seq} is not in ${row.id}`);
    }
    return message;
  }

  /** The branch ending at `seq` (inclusive), from it back to the root, read lazily. */
  *branchFrom(seq: number | null): Generator<MessageRow, void, undefined> {
    let next = seq;
    while (next !== null) {
      const message = this.message(next);
      if (!message) return;
      yield message;
      next = message.parent;
    }
  }

  /** The branch ending at `seq`, newest first, as the model's context. */
  *contextFrom(seq: number | null): Generator<ChatMessage, void, undefined> {
    for (const m of this.branchFrom(seq)) yield { role: m.role, content: m.content };
  }

  /** Ids of the children of `parent` (the roots when null) in conversation `conversation`, oldest first. */
  children(conversation: number, parent: number | null): number[] {
    return this.sql
      .exec<{ seq: number }>("SELECT seq FROM messages WHERE conversation_id = ? AND parent IS ? ORDER BY seq", conversation, parent)
      .toArray()
      .map((r) => r.seq);
  }

  /** The newest leaf below `seq`: at each step the newest child, as a client's "switch to this one" means. */
  newestLeafBelow(row: ConversationRow, seq: number): number {
    let at = seq;
    for (;;) {
      const child = this.sql
        .exec<{ seq: number }>("SELECT seq FROM messages WHERE conversation_id = ? AND parent = ? ORDER BY seq DESC LIMIT 1", row.internal, at)
        .toArray()[0];
      if (!child) return at;
      at = child.seq;
    }
  }

  /** Makes `leaf` the end of the conversation's current branch. */
  setLeaf(row: ConversationRow, leaf: number): number {
    const depth = this.message(leaf)!.depth;
    this.sql.exec("UPDATE conversations SET leaf = ?, message_count = ? WHERE id = ?", leaf, depth, row.internal);
    return depth;
  }

  private insertMessage(row: ConversationRow, parent: MessageRow | null, message: StoredMessage, truncated: boolean): MessageRow {
    const seq = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO messages (conversation_id, role, content, created_at, stopped, truncated, parent, depth) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        row.internal,
        message.role,
        message.content,
        message.time,
        message.stopped ? 1 : 0,
        truncated ? 1 : 0,
        parent?.seq ?? null,
        (parent?.depth ?? 0) + 1,
      )
      .one().seq;
    if (this.engine === "fts5") this.sql.exec("INSERT INTO message_fts (rowid, content) VALUES (?, ?)", seq, message.content);
    return this.message(seq)!;
  }

  /**
   * Stores one exchange atomically: a user message under `parent` (when `user` is given) and the
   * assistant's reply under it (or under `parent` itself, a regenerated reply), and makes the reply the
   * current leaf. Called only after the model has answered, so a failed call leaves no trace.
   */
  appendTurn(
    row: ConversationRow,
    parent: MessageRow | null,
    user: StoredMessage | null,
    assistant: StoredMessage,
    truncated: boolean,
  ): { user: MessageRow | null; assistant: MessageRow; messageCount: number } {
    return this.storage.transactionSync(() => {
      const userRow = user ? this.insertMessage(row, parent, user, false) : null;
      const reply = this.insertMessage(row, userRow ?? parent, assistant, truncated);
      this.sql.exec(
        "UPDATE conversations SET leaf = ?, message_count = ?, updated_at = ? WHERE id = ?",
        reply.seq,
        reply.depth,
        assistant.time,
        row.internal,
      );
      return { user: userRow, assistant: reply, messageCount: reply.depth };
    });
  }

  /** Appends `text` to a reply (`continue`), which becomes the current leaf. */
  extendReply(row: ConversationRow, reply: MessageRow, text: string, truncated: boolean, stopped: boolean, time: string): MessageRow {
    return this.storage.transactionSync(() => {
      if (this.engine === "fts5") {
        this.sql.exec("INSERT INTO message_fts (message_fts, rowid, content) VALUES ('delete', ?, ?)", reply.seq, reply.content);
      }
      this.sql.exec(
        "UPDATE messages SET content = content || ?, truncated = ?, stopped = ? WHERE seq = ?",
        text,
        truncated ? 1 : 0,
        stopped ? 1 : 0,
        reply.seq,
      );
      const updated = this.message(reply.seq)!;
      if (this.engine === "fts5") this.sql.exec("INSERT INTO message_fts (rowid, content) VALUES (?, ?)", updated.seq, updated.content);
      this.sql.exec(
        "UPDATE conversations SET leaf = ?, message_count = ?, updated_at = ? WHERE id = ?",
        updated.seq,
        updated.depth,
        time,
        row.internal,
      );
      return updated;
    });
  }

  /** The first user message and reply of a conversation (for its title). */
  firstExchange(row: ConversationRow): { user: string; assistant: string } | null {
    const [user, assistant] = this.sql
      .exec<{ role: string; content: string }>(
        "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY seq LIMIT 2",
        row.internal,
      )
      .toArray();
    if (!user || !assistant || user.role !== "user" || assistant.role !== "assistant") return null;
    return { user: user.content, assistant: assistant.content };
  }

  private wire(m: MessageRow): WireMessage {
    const message: WireMessage = {
      id: m.seq,
      parent: m.parent,
      role: m.role,
      content: m.content,
      time: m.time,
      siblings: this.children(m.conversation, m.parent),
    };
    if (m.role === "assistant") {
      message.stopped = m.stopped;
      message.truncated = m.truncated;
    }
    return message;
  }

  /**
   * A page of a conversation's current branch, read from the newest message back and returned oldest
   * first: the messages above `before` (from the leaf when null), at most `limit` of them (no limit
   * when null) and at most `maxBytes` of them as JSON, though never none when there is one to give.
   * Rows are read only as far as the page needs.
   */
  historyPage(row: ConversationRow | null, before: Cursor | null, limit: number | null, maxBytes: number): HistoryPage {
    let start: number | null = row?.leaf ?? null;
    let conversation = row?.internal ?? 0;
    let messageCount = row?.messageCount ?? 0;
    if (before !== null) {
      const owner = this.byInternal(before.conversation);
      const at = this.message(before.seq);
      if (!owner || owner.deletedAt !== null || !at || at.conversation !== owner.internal || (row && row.internal !== owner.internal)) {
        throw new ApiError("bad_request", "before is not a cursor this agent gave.", "use the previous value of a history answer");
      }
      conversation = owner.internal;
      // The branch the cursor follows is as long as its message's depth plus what the page began with.
      messageCount = owner.messageCount;
      start = at.parent;
    }
    const page: WireMessage[] = [];
    let bytes = 2; // the brackets of the JSON array
    let oldest: number | null = null;
    let more = false;
    for (const m of this.branchFrom(start)) {
      const message = this.wire(m);
      const size = utf8Length(JSON.stringify(message)) + 1;
      if ((limit !== null && page.length >= limit) || (page.length > 0 && bytes + size > maxBytes)) {
        more = true;
        break;
      }
      page.push(message);
      bytes += size;
      oldest = m.seq;
    }
    page.reverse();
    return {
      messages: page,
      messageCount,
      previous: more && oldest !== null ? formatCursor({ conversation, seq: oldest }) : null,
    };
  }

  // --- search ----------------------------------------------------------------------------------------

  /**
   * Messages of every conversation not in the trash whose words start with every term of `q`, newest
   * first, at most `limit`. FTS5 finds them through its index in rowid (= message) order; the LIKE
   * fallback scans the messages newest first.
   */
  search(q: string, limit: number): SearchHit[] {
    const terms = queryTerms(q);
    if (terms.length === 0) return [];
    type Row = { seq: number; role: "user" | "assistant"; content: string; created_at: string; public_id: string; title: string; archived_at: string | null };
    let rows: Row[];
    const columns = "m.seq AS seq, m.role AS role, m.content AS content, m.created_at AS created_at, c.public_id AS public_id, c.title AS title, c.archived_at AS archived_at";
    if (this.engine === "fts5") {
      rows = this.sql
        .exec<Row>(
          `SELECT ${columns} FROM message_fts JOIN messages m ON m.seq = message_fts.rowid ` +
            "JOIN conversations c ON c.id = m.conversation_id " +
            "WHERE message_fts MATCH ? AND c.deleted_at IS NULL ORDER BY message_fts.rowid DESC LIMIT ?",
          ftsQuery(terms),
          limit,
        )
        .toArray();
    } else {
      // Case-insensitive for ASCII only (SQLite's LIKE), and substring rather than word-start: the
      // documented approximation where FTS5 is missing. Matches are then checked word by word below.
      const likes = terms.map(() => "m.content LIKE ? ESCAPE '\\'").join(" AND ");
      const patterns = terms.map((t) => `%${t.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      rows = this.sql
        .exec<Row>(
          `SELECT ${columns} FROM messages m JOIN conversations c ON c.id = m.conversation_id ` +
            `WHERE ${likes} AND c.deleted_at IS NULL ORDER BY m.seq DESC LIMIT ?`,
          ...patterns,
          limit,
        )
        .toArray();
    }
    return rows.map((r) => {
      const { snippet, highlights } = makeSnippet(r.content, terms);
      return {
        chat: r.public_id,
        title: r.title,
        role: r.role,
        time: r.created_at,
        snippet,
        highlights,
        messageId: r.seq,
        archived: r.archived_at !== null,
      };
    });
  }
}
