/**
 * What one user's Durable Object keeps about the user beside the conversation: the identity it is
 * bound to, the "not before" time of a revocation, the idempotency keys of recent turns, and the use
 * counted against the per-user limits. Each user's object counts only that user, so one user's use
 * never limits another's.
 *
 * Synchronous SQL, like store.ts; it reads the `messages` table that store.ts writes (read only) to
 * replay a remembered turn.
 */

import { ApiError } from "./errors";
import { IDEMPOTENCY_TTL_MS, MINUTE_MS, nextUtcMidnight, quotaError, utcDay, type Limits } from "./limits";
import type { Usage } from "./model";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  assistant_seq INTEGER NOT NULL,
  message_count INTEGER NOT NULL,
  usage TEXT
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency_keys (created_ms);
CREATE TABLE IF NOT EXISTS usage_days (
  day TEXT PRIMARY KEY,
  tokens INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS turn_starts (
  at_ms INTEGER NOT NULL
);
`;

/** Days of usage kept (the current one counts; the rest are for the operator's curiosity). */
const USAGE_DAYS_KEPT = 8;

/** A turn remembered under its idempotency key. */
export interface RememberedTurn {
  /** The user's message of that turn, to tell a true repeat from a reused key. */
  asked: string;
  message: string;
  messageCount: number;
  stopped: boolean;
  usage?: Usage;
}

export class UserLedger {
  private readonly sql: SqlStorage;

  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql;
    this.sql.exec(SCHEMA);
  }

  private meta(key: string): string | null {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM ledger_meta WHERE key = ?", key).toArray()[0];
    return row ? row.value : null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO ledger_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  // --- identity ------------------------------------------------------------------------------------

  /** Tokens issued before this time (ms) are revoked; 0 when none are. */
  get notBefore(): number {
    return Number(this.meta("not_before_ms") ?? "0");
  }

  /** Revokes every token issued before `nowMs`. A later revocation only moves the time forward. */
  revokeBefore(nowMs: number): number {
    const time = Math.max(this.notBefore, nowMs);
    this.setMeta("not_before_ms", String(time));
    return time;
  }

  /**
   * Binds this user id to the principal (the verified identity it was derived from) that first uses
   * it, and says whether `principal` is that one: two identities that map to one id never share it.
   */
  bindPrincipal(principal: string): boolean {
    const bound = this.meta("principal");
    if (bound === null) {
      this.setMeta("principal", principal);
      return true;
    }
    return bound === principal;
  }

  // --- limits --------------------------------------------------------------------------------------

  tokensUsed(nowMs: number): number {
    const row = this.sql.exec<{ tokens: number }>("SELECT tokens FROM usage_days WHERE day = ?", utcDay(nowMs)).toArray()[0];
    return row ? row.tokens : 0;
  }

  /**
   * Admits a new turn or throws 429 `quota_exceeded` with the time the limit resets. An admitted turn
   * counts against the per-minute limit whatever becomes of it.
   */
  admitTurn(limits: Limits, nowMs: number): void {
    if (limits.dailyTokens !== null) {
      const used = this.tokensUsed(nowMs);
      if (used >= limits.dailyTokens) {
        throw quotaError(
          "daily_tokens",
          "You have used your tokens for today.",
          `${used} of ${limits.dailyTokens} tokens used this UTC day`,
          nextUtcMidnight(nowMs),
          nowMs,
        );
      }
    }
    if (limits.turnsPerMinute !== null) {
      this.sql.exec("DELETE FROM turn_starts WHERE at_ms <= ?", nowMs - MINUTE_MS);
      const row = this.sql
        .exec<{ n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM turn_starts")
        .one();
      if (row.n >= limits.turnsPerMinute) {
        throw quotaError(
          "turns_per_minute",
          "You are sending messages too fast.",
          `${row.n} turns in the last minute; at most ${limits.turnsPerMinute}`,
          (row.oldest ?? nowMs) + MINUTE_MS,
          nowMs,
        );
      }
      this.sql.exec("INSERT INTO turn_starts (at_ms) VALUES (?)", nowMs);
    }
  }

  /** Counts a turn's tokens against today's use. */
  charge(nowMs: number, tokens: number): void {
    if (!(tokens > 0)) return;
    const day = utcDay(nowMs);
    this.sql.exec(
      "INSERT INTO usage_days (day, tokens) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET tokens = tokens + excluded.tokens",
      day,
      Math.ceil(tokens),
    );
    this.sql.exec(
      "DELETE FROM usage_days WHERE day NOT IN (SELECT day FROM usage_days ORDER BY day DESC LIMIT ?)",
      USAGE_DAYS_KEPT,
    );
  }

  // --- idempotency ---------------------------------------------------------------------------------

  /** The turn stored under `key`, if it is still remembered. */
  findTurn(key: string, nowMs: number): RememberedTurn | null {
    const row = this.sql
      .exec<{ created_ms: number; assistant_seq: number; message_count: number; usage: string | null }>(
        "SELECT created_ms, assistant_seq, message_count, usage FROM idempotency_keys WHERE key = ?",
        key,
      )
      .toArray()[0];
    if (!row || row.created_ms <= nowMs - IDEMPOTENCY_TTL_MS) return null;
    const messages = this.sql
      .exec<{ seq: number; role: string; content: string; stopped: number }>(
        "SELECT seq, role, content, stopped FROM messages WHERE seq IN (?, ?) ORDER BY seq",
        row.assistant_seq - 1,
        row.assistant_seq,
      )
      .toArray();
    const [user, assistant] = messages;
    if (!user || !assistant || user.role !== "user" || assistant.role !== "assistant") return null;
    const turn: RememberedTurn = {
      asked: user.content,
      message: assistant.content,
      messageCount: row.message_count,
      stopped: assistant.stopped === 1,
    };
    if (row.usage) turn.usage = JSON.parse(row.usage) as Usage;
    return turn;
  }

  /**
   * Remembers `key` with the turn just stored (the newest message row is its reply). Called in the
   * same synchronous step as the write of the turn, so a key is never remembered without its turn nor
   * a turn stored without its key. Keeps the newest `maxKeys` keys and none older than the TTL.
   */
  rememberTurn(key: string, nowMs: number, messageCount: number, usage: Usage | undefined, maxKeys: number): void {
    const seq = this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM messages").one().seq;
    if (seq === null) throw new ApiError("internal", "Internal server error", "no stored turn to remember");
    this.sql.exec(
      "INSERT INTO idempotency_keys (key, created_ms, assistant_seq, message_count, usage) VALUES (?, ?, ?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET created_ms = excluded.created_ms, assistant_seq = excluded.assistant_seq, " +
        "message_count = excluded.message_count, usage = excluded.usage",
      key,
      nowMs,
      seq,
      messageCount,
      usage ? JSON.stringify(usage) : null,
    );
    this.sql.exec("DELETE FROM idempotency_keys WHERE created_ms <= ?", nowMs - IDEMPOTENCY_TTL_MS);
    this.sql.exec(
      "DELETE FROM idempotency_keys WHERE key IN " +
        "(SELECT key FROM idempotency_keys ORDER BY created_ms DESC, rowid DESC LIMIT -1 OFFSET ?)",
      maxKeys,
    );
  }

  /** How many keys are remembered now (for tests). */
  get keyCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM idempotency_keys").one().n;
  }
}
