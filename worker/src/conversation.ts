/**
 * The Durable Object that keeps one user's conversation: one object per user id, found with
 * `idFromName(userId)`. It answers the Worker over RPC and never sees HTTP.
 */

import { DurableObject } from "cloudflare:workers";
import { readSettings, type Env, type Settings } from "./config";
import { budgetAfterRejection, estimateTokens, fitContext, inputBudget, type ChatMessage, type FittedContext } from "./context";
import { ApiError, asApiError, type ErrorBody } from "./errors";
import { UserLedger, type RememberedTurn } from "./ledger";
import { readLimits } from "./limits";
import {
  isContextError,
  mapModelError,
  readStreamData,
  runModel,
  sseData,
  streamEndedEarly,
  streamModel,
  withTimeout,
  type Usage,
} from "./model";
import { ConversationStore, type Cursor, type StoredMessage } from "./store";
import { TurnQueue } from "./turnqueue";

export interface ChatReply {
  ok: true;
  message: string;
  messageCount: number;
  usage?: Usage;
  /** Set when this answers a repeated Idempotency-Key: the turn stored for it, not a new one. */
  replayed?: boolean;
  /** Set on a replayed turn whose reply was stopped (its client left mid-stream). */
  stopped?: boolean;
}
export interface ChatStream {
  ok: true;
  stream: ReadableStream<Uint8Array>;
  /** Names the turn for `stopTurn`, which the Worker calls when its client hangs up. */
  turnId: string;
  replayed?: boolean;
}
export interface TurnOptions {
  /** The client's Idempotency-Key: a repeat returns the turn stored (or running) under it. */
  idempotencyKey?: string;
}
/** What the Worker asks the user's object about a verified credential. */
export interface AuthorizeRequest {
  /** user-tokens: the token's issue time, refused when a revocation came after it. */
  issuedAtMs?: number;
  /** access: the identity the user id was derived from; the object is bound to the first one. */
  principal?: string;
}
export interface Failure {
  ok: false;
  error: ErrorBody;
}
export interface HistoryAnswer {
  ok: true;
  userId: string;
  messageCount: number;
  messages: StoredMessage[];
  /** The cursor of the page before this one, or null (docs/protocol.md, `history-pages`). */
  previous: string | null;
}
export interface ResetAnswer {
  ok: true;
  messageCount: number;
  archived: string | null;
}

/** How often a stream that is waiting on the model sends a comment, so proxies do not time it out. */
const KEEP_ALIVE_MS = 15_000;
/**
 * Until the first text is sent, a comment goes out this often. The runtime notices that a client has
 * hung up only when it writes to the connection, and a client that leaves before any text takes its
 * message back, so the turn must be stopped (and not stored) before text is written into the void.
 */
const PROBE_MS = 200;
/** The first text waits this long after a probe, for a hang-up the probe reveals to reach the object. */
const FIRST_TEXT_GRACE_MS = 40;

const encoder = new TextEncoder();
function sseEvent(name: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

function failure(err: unknown): Failure {
  return { ok: false, error: asApiError(err).toBody() };
}

/** The `done` event (or JSON answer) of a reply. */
function doneData(reply: ChatReply): Record<string, unknown> {
  const done: Record<string, unknown> = { message: reply.message, messageCount: reply.messageCount };
  if (reply.usage) done.usage = reply.usage;
  if (reply.replayed) done.replayed = true;
  if (reply.stopped) done.stopped = true;
  return done;
}

function replayOf(turn: RememberedTurn): ChatReply {
  const reply: ChatReply = { ok: true, message: turn.message, messageCount: turn.messageCount, replayed: true };
  if (turn.usage) reply.usage = turn.usage;
  if (turn.stopped) reply.stopped = true;
  return reply;
}

/** Tokens a turn is charged: the model's own count when it gave one, else the Worker's estimate. */
function tokensOf(usage: Usage | undefined, inputEstimate: number, reply: string): number {
  if (usage?.total_tokens !== undefined) return usage.total_tokens;
  if (usage?.prompt_tokens !== undefined || usage?.completion_tokens !== undefined) {
    return (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0);
  }
  return inputEstimate + estimateTokens({ content: reply });
}

function inputEstimate(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + estimateTokens(m), 0);
}

const keyReused = (): Failure =>
  failure(new ApiError("bad_request", "This Idempotency-Key was already used for another message.", "send a new key with each new message"));

export class Conversation extends DurableObject<Env> {
  private readonly store: ConversationStore;
  private readonly turns = new TurnQueue();
  /** Streamed turns in progress, by turn id: each entry stops its turn as if its client had left. */
  private readonly liveStreams = new Map<string, () => void>();
  private readonly ledger: UserLedger;
  /** Turns running under an idempotency key: a repeat of the key waits for its outcome. */
  private readonly pendingKeys = new Map<string, { asked: string; outcome: Promise<ChatReply | Failure> }>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous SQL: the schema and the current conversation are ready before the first request
    // (the seed loaded its state asynchronously without blocking, defect 1).
    this.store = new ConversationStore(ctx.storage);
    this.ledger = new UserLedger(ctx.storage);
  }

  /**
   * Checks a verified credential against what this user's object knows: a revocation after the
   * token's issue time (401), or another identity already bound to this user id (403).
   */
  async authorize(check: AuthorizeRequest): Promise<{ ok: true } | Failure> {
    if (check.issuedAtMs !== undefined && check.issuedAtMs < this.ledger.notBefore) {
      return failure(new ApiError("unauthorized", "This token has been revoked.", "ask the operator for a new token"));
    }
    if (check.principal !== undefined && !this.ledger.bindPrincipal(check.principal)) {
      return failure(
        new ApiError("forbidden", "This user id belongs to another identity.", "two identities map to one user id; tell the operator"),
      );
    }
    return { ok: true };
  }

  /** Revokes every token of this user issued before now; returns the new "not before" time (ms). */
  async revoke(): Promise<{ ok: true; notBefore: number }> {
    return { ok: true, notBefore: this.ledger.revokeBefore(Date.now()) };
  }

  /**
   * What a repeated idempotency key stands for: the outcome of the turn running or stored under it,
   * a refusal when the key came with another message, or null when the key is new (or forgotten).
   */
  private repeatOf(key: string, message: string): Promise<ChatReply | Failure> | Failure | null {
    const running = this.pendingKeys.get(key);
    if (running) {
      if (running.asked !== message) return keyReused();
      return running.outcome.then((o) => (o.ok ? { ...o, replayed: true } : o));
    }
    const stored = this.ledger.findTurn(key, Date.now());
    if (stored === null) return null;
    if (stored.asked !== message) return keyReused();
    return Promise.resolve(replayOf(stored));
  }

  /**
   * Registers a new turn under its key before anything is awaited, so a repeat arriving meanwhile
   * waits for it. The returned function settles the key; it runs in the same synchronous step as the
   * write of the turn, so a repeat finds either the running turn or the stored one, never neither.
   */
  private beginKey(key: string | undefined, message: string): ((outcome: ChatReply | Failure) => void) | null {
    if (!key) return null;
    let settle!: (outcome: ChatReply | Failure) => void;
    const outcome = new Promise<ChatReply | Failure>((resolve) => {
      settle = resolve;
    });
    this.pendingKeys.set(key, { asked: message, outcome });
    let settled = false;
    return (result) => {
      if (settled) return;
      settled = true;
      if (this.pendingKeys.get(key)?.outcome === outcome) this.pendingKeys.delete(key);
      settle(result);
    };
  }

  /** A repeated key answered as a stream: keep-alives while the turn runs, then its reply whole. */
  private replayStream(outcome: Promise<ChatReply | Failure>): ChatStream {
    let closed = false;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        keepAlive = setInterval(() => {
          if (!closed) controller.enqueue(encoder.encode(": keep-alive\n\n"));
        }, KEEP_ALIVE_MS);
        void outcome.then((result) => {
          if (keepAlive !== undefined) clearInterval(keepAlive);
          if (closed) return;
          if (result.ok) {
            if (result.message !== "") controller.enqueue(sseEvent("delta", { text: result.message }));
            controller.enqueue(sseEvent("done", doneData(result)));
          } else {
            controller.enqueue(sseEvent("error", result.error));
          }
          closed = true;
          controller.close();
        });
      },
      cancel() {
        closed = true;
        if (keepAlive !== undefined) clearInterval(keepAlive);
      },
    });
    return { ok: true, stream, turnId: crypto.randomUUID(), replayed: true };
  }

  /** One turn, answered whole. Nothing is stored unless the model answers. */
  async chat(userId: string, message: string, options: TurnOptions = {}): Promise<ChatReply | Failure> {
    const key = options.idempotencyKey;
    if (key) {
      const repeat = this.repeatOf(key, message);
      if (repeat) return repeat;
    }
    const settleKey = this.beginKey(key, message);
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    let answer: ChatReply | Failure;
    try {
      const settings = readSettings(this.env);
      const { limits } = readLimits(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.ledger.admitTurn(limits, Date.now());
      this.store.rememberOwner(userId);
      let sent = 0;
      const reply = await this.withContextRetry(settings, message, (messages) => {
        sent = inputEstimate(messages);
        return runModel(this.env.AI, settings, messages);
      });
      const now = Date.now();
      const messageCount = this.ctx.storage.transactionSync(() => {
        const count = this.store.appendTurn(
          { role: "user", content: message, time: received },
          { role: "assistant", content: reply.text, time: new Date(now).toISOString() },
        );
        this.ledger.charge(now, tokensOf(reply.usage, sent, reply.text));
        if (key) this.ledger.rememberTurn(key, now, count, reply.usage, limits.idempotencyKeys);
        return count;
      });
      answer = { ok: true, message: reply.text, messageCount };
      if (reply.usage) answer.usage = reply.usage;
    } catch (err) {
      answer = failure(err);
    } finally {
      release?.();
    }
    settleKey?.(answer);
    return answer;
  }

  /**
   * One turn, answered as server-sent events (docs/protocol.md, `stream`). Failures before the model
   * starts answering come back as a Failure, so the Worker can still answer with a status code; later
   * ones become an `error` event. The turn holds this user's queue until its stream ends.
   */
  async chatStream(userId: string, message: string, options: TurnOptions = {}): Promise<ChatStream | Failure> {
    const key = options.idempotencyKey;
    if (key) {
      const repeat = this.repeatOf(key, message);
      if (repeat instanceof Promise) return this.replayStream(repeat);
      if (repeat) return repeat;
    }
    const settleKey = this.beginKey(key, message);
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    let settings: Settings;
    let modelStream: ReadableStream<Uint8Array>;
    let sent = 0;
    const { limits } = readLimits(this.env);
    try {
      settings = readSettings(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.ledger.admitTurn(limits, Date.now());
      this.store.rememberOwner(userId);
      modelStream = await this.withContextRetry(settings, message, (messages) => {
        sent = inputEstimate(messages);
        return streamModel(this.env.AI, settings, messages);
      });
    } catch (err) {
      release?.();
      const refused = failure(err);
      settleKey?.(refused);
      return refused;
    }
    const store = this.store;
    const ledger = this.ledger;
    const storage = this.ctx.storage;
    const liveStreams = this.liveStreams;
    const turnId = crypto.randomUUID();
    const endTurn = (): void => {
      liveStreams.delete(turnId);
      release?.();
    };
    let cancelled = false;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    const stop = (): void => {
      if (cancelled) return;
      cancelled = true;
      // Stop paying for tokens nobody will read; the pending read then ends and the pump stores the turn.
      void reader?.cancel().catch(() => undefined);
    };
    liveStreams.set(turnId, stop);

    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let lastWrite = Date.now();
        const send = (chunk: Uint8Array): void => {
          if (cancelled) return;
          controller.enqueue(chunk);
          lastWrite = Date.now();
        };
        let text = "";
        const probe = (): void => send(encoder.encode(": keep-alive\n\n"));
        const keepAlive = setInterval(() => {
          if (text === "" || Date.now() - lastWrite >= KEEP_ALIVE_MS) probe();
        }, PROBE_MS);
        let usage: Usage | undefined;
        const storeTurn = (stopped: boolean): number => {
          const now = Date.now();
          return storage.transactionSync(() => {
            const count = store.appendTurn(
              { role: "user", content: message, time: received },
              { role: "assistant", content: text, time: new Date(now).toISOString(), stopped },
            );
            ledger.charge(now, tokensOf(usage, sent, text));
            if (key) ledger.rememberTurn(key, now, count, usage, limits.idempotencyKeys);
            return count;
          });
        };
        let outcome: ChatReply | Failure | undefined;
        const pump = async (): Promise<void> => {
          let failed: ErrorBody | null = null;
          try {
            const pieces = sseData(modelStream, (r) => {
              reader = r;
              return withTimeout(r.read(), settings.modelTimeoutMs, "the model's stream stalled");
            });
            let complete = false;
            for await (const data of pieces) {
              if (cancelled) break;
              const piece = readStreamData(data);
              if (piece === null) {
                complete = true;
                break;
              }
              if (piece.usage) usage = piece.usage;
              if (piece.text !== "") {
                if (text === "") {
                  // Last chance to learn that the client left before seeing anything.
                  probe();
                  await new Promise((resolve) => setTimeout(resolve, FIRST_TEXT_GRACE_MS));
                  if (cancelled) break;
                }
                text += piece.text;
                send(sseEvent("delta", { text: piece.text }));
              }
            }
            // Only `[DONE]` says the reply is whole: a stream that just stops may have been cut off.
            if (!complete && !cancelled) throw streamEndedEarly(text.length);
          } catch (err) {
            // A client that already left keeps what it saw; otherwise the turn failed and stays unstored.
            if (!cancelled) failed = mapModelError(err).toBody();
            void reader?.cancel().catch(() => undefined);
          }
          try {
            if (failed) {
              // The model was paid for what it generated, stored or not.
              ledger.charge(Date.now(), tokensOf(usage, sent, text));
              outcome = { ok: false, error: failed };
              send(sseEvent("error", failed));
            } else if (cancelled && text === "") {
              // The client left before any text reached it, and puts the message back in its input:
              // storing the turn would duplicate it when the message is sent again. The model's
              // input was paid for all the same. A request waiting on the same Idempotency-Key is
              // told the turn was not processed (429, which a client may send again): nothing is
              // stored or remembered under the key, so sending it again runs the turn afresh.
              ledger.charge(Date.now(), tokensOf(usage, sent, text));
              outcome = failure(
                new ApiError(
                  "rate_limited",
                  "The earlier request with this message was stopped before any reply; nothing was stored.",
                  "send it again",
                  1,
                ),
              );
            } else {
              // The client left before the end: keep what it saw, marked stopped, as the protocol allows.
              const messageCount = storeTurn(cancelled);
              const reply: ChatReply = { ok: true, message: text, messageCount };
              if (usage) reply.usage = usage;
              if (cancelled) reply.stopped = true;
              outcome = reply;
              send(sseEvent("done", doneData({ ...reply, stopped: false })));
            }
          } catch (err) {
            outcome = failure(err);
            send(sseEvent("error", outcome.error));
          } finally {
            settleKey?.(outcome ?? failure(new Error("the turn ended without an outcome")));
            clearInterval(keepAlive);
            endTurn();
            try {
              controller.close();
            } catch {
              // Already cancelled by its reader: nothing left to close.
            }
          }
        };
        void pump();
      },
      cancel() {
        stop();
      },
    });
    return { ok: true, stream, turnId };
  }

  /**
   * Stops a streamed turn whose client has gone: what was generated so far is stored, marked stopped
   * (nothing at all when no text had been sent: the client takes the message back).
   * The Worker calls it because a hang-up does not reach a stream that crossed the RPC boundary.
   * Returns whether the turn was still running.
   */
  async stopTurn(turnId: string): Promise<boolean> {
    const stop = this.liveStreams.get(turnId);
    if (!stop) return false;
    stop();
    return true;
  }

  /**
   * A page of the conversation, oldest first, without the system prompt: the newest messages of the
   * current conversation, or those before the cursor `before`; at most `limit` of them and at most
   * `maxBytes` of JSON.
   */
  async history(
    userId: string,
    limit: number | null,
    before: Cursor | null = null,
    maxBytes: number = Number.MAX_SAFE_INTEGER,
  ): Promise<HistoryAnswer | Failure> {
    try {
      const page = this.store.historyPage(before, limit, maxBytes);
      return {
        ok: true,
        userId: this.store.owner ?? userId,
        messageCount: page.messageCount,
        messages: page.messages,
        previous: page.previous,
      };
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Starts a new conversation, archiving the old one. It waits its turn like a chat, so a reset never
   * lands between a turn's model call and its write.
   */
  async reset(userId: string): Promise<ResetAnswer | Failure> {
    let release: (() => void) | undefined;
    try {
      release = await this.turns.acquire(readSettings(this.env).maxQueuedTurns);
      this.store.rememberOwner(userId);
      const { archived } = this.store.archiveCurrent();
      return { ok: true, messageCount: 0, archived };
    } catch (err) {
      return failure(err);
    } finally {
      release?.();
    }
  }

  /**
   * Fits the conversation to the window and calls the model; when the model still finds it too long
   * (its tokenizer counted more than the estimate), tries once more with a budget scaled by its count.
   */
  private async withContextRetry<T>(
    settings: Settings,
    message: string,
    call: (messages: ChatMessage[]) => Promise<T>,
  ): Promise<T> {
    const system: ChatMessage = { role: "system", content: settings.systemPrompt };
    const incoming: ChatMessage = { role: "user", content: message };
    let budget = inputBudget(settings.contextWindow, settings.maxTokens);
    const fit = (): FittedContext => {
      const fitted = fitContext(system, this.store.newestFirst(), incoming, budget);
      if (fitted === null) {
        throw new ApiError(
          "context_too_long",
          "The message is too long for the model's context window.",
          `the message needs more than the ${budget} tokens left after the system prompt and a ${settings.maxTokens}-token reply`,
        );
      }
      return fitted;
    };
    const first = fit();
    try {
      return await call(first.messages);
    } catch (err) {
      const mapped = mapModelError(err);
      if (!isContextError(mapped)) throw mapped;
      budget = budgetAfterRejection(
        mapped.details ?? "",
        first.estimatedTokens,
        budget,
        settings.maxTokens,
        settings.contextWindow,
      );
      if (budget >= first.estimatedTokens) throw mapped;
      const second = fit();
      try {
        return await call(second.messages);
      } catch (again) {
        throw mapModelError(again);
      }
    }
  }
}
