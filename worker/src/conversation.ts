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
  readResult,
  readStreamData,
  runModel,
  sseData,
  streamEndedEarly,
  streamModel,
  withTimeout,
  type Usage,
} from "./model";
import { sanitizeTitle, titleFromModel, titleFromWords } from "./library";
import {
  ConversationStore,
  type ConversationInfo,
  type ConversationRow,
  type Cursor,
  type MessageRow,
  type SearchHit,
  type WireMessage,
} from "./store";
import { TurnQueue } from "./turnqueue";

export interface ChatReply {
  ok: true;
  message: string;
  messageCount: number;
  usage?: Usage;
  /** The conversation the turn went to, the reply's message id and the user message's (when one was stored). */
  conversationId?: string;
  messageId?: number;
  userMessageId?: number | null;
  /** The reply reached max_tokens (`continue` goes on with it). */
  truncated?: boolean;
  /** `continue`: the text added to the reply (`message` is the whole reply). */
  appended?: string;
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
/** What a turn asks for (docs/protocol.md, `conversations`). */
export interface TurnRequest {
  /** chat: a new message at the end of the branch; edit: a new sibling of a user message, and its reply;
   * regenerate: a new sibling of a reply; continue: more of a reply cut at max_tokens. */
  kind: "chat" | "edit" | "regenerate" | "continue";
  message?: string;
  /** Required for all but chat, which defaults to the most recent conversation. */
  conversationId?: string;
  /** edit: the user message to replace (default: the branch's last); regenerate: the reply (default: the leaf). */
  messageId?: number;
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
  conversationId: string | null;
  title: string | null;
  messageCount: number;
  messages: WireMessage[];
  /** The cursor of the page before this one, or null (docs/protocol.md, `history-pages`). */
  previous: string | null;
}
export interface ResetAnswer {
  ok: true;
  messageCount: number;
  archived: string | null;
  conversationId: string;
}
export interface ConversationAnswer {
  ok: true;
  conversation: ConversationInfo;
}
export interface ListAnswer {
  ok: true;
  conversations: ConversationInfo[];
  current: string | null;
}
export interface SearchAnswer {
  ok: true;
  results: SearchHit[];
  engine: "fts5" | "like";
}

/** What a turn was planned as, once its conversation and place in the tree are known. */
interface TurnPlan {
  conversation: ConversationRow;
  /** The parent of the new user message (chat, edit) or of the new reply (regenerate). */
  parent: MessageRow | null;
  /** The user message to store, when the turn stores one. */
  userMessage: string | null;
  /** continue: the reply that grows. */
  extend: MessageRow | null;
  /** The stored context (newest first) and the message the model answers. */
  context: () => Iterable<ChatMessage>;
  incoming: ChatMessage;
}

/** The message a `continue` sends after the cut reply (it is not stored). */
export const CONTINUE_PROMPT =
  "Continue your previous reply exactly where it stopped, without repeating anything or adding a preamble.";
/** The default model for titles: small, fast and cheap. */
export const DEFAULT_TITLE_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast";
const TITLE_PROMPT =
  "Reply with a title for this conversation: at most six words, on one line, in the conversation's language, " +
  "no quotes, no trailing full stop. Reply with the title only.";
const TITLE_MAX_TOKENS = 24;
const TITLE_TIMEOUT_MS = 20_000;
/** Days a deleted conversation stays in the trash (TRASH_DAYS). */
export const DEFAULT_TRASH_DAYS = 30;

export interface LibrarySettings {
  autoTitles: boolean;
  titleModel: string;
  trashDays: number;
}

export function readLibrarySettings(env: Env): LibrarySettings {
  const off = /^(off|false|0|no)$/i.test(String(env.AUTO_TITLES ?? "").trim());
  const days = Number(String(env.TRASH_DAYS ?? "").trim() || DEFAULT_TRASH_DAYS);
  return {
    autoTitles: !off,
    titleModel: env.TITLE_MODEL?.trim() || DEFAULT_TITLE_MODEL,
    trashDays: Number.isFinite(days) && days >= 0 && days <= 3650 ? days : DEFAULT_TRASH_DAYS,
  };
}

/** What a repeat of an Idempotency-Key must match: the message for a plain chat (as before), else the whole request. */
export function fingerprintOf(request: TurnRequest): string {
  if (request.kind === "chat" && request.conversationId === undefined) return request.message ?? "";
  return JSON.stringify([request.kind, request.conversationId ?? null, request.message ?? null, request.messageId ?? null]);
}

function conflict(message: string, details?: string): ApiError {
  return new ApiError("conflict", message, details);
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
  if (reply.conversationId !== undefined) done.conversationId = reply.conversationId;
  if (reply.messageId !== undefined) done.messageId = reply.messageId;
  if (reply.userMessageId !== undefined) done.userMessageId = reply.userMessageId;
  if (reply.truncated !== undefined) done.truncated = reply.truncated;
  if (reply.appended !== undefined) done.appended = reply.appended;
  if (reply.replayed) done.replayed = true;
  if (reply.stopped) done.stopped = true;
  return done;
}

function replayOf(turn: RememberedTurn, conversationId: string | undefined): ChatReply {
  const reply: ChatReply = { ok: true, message: turn.message, messageCount: turn.messageCount, replayed: true };
  if (conversationId !== undefined) reply.conversationId = conversationId;
  reply.messageId = turn.assistantSeq;
  reply.userMessageId = turn.userSeq;
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
    this.store = new ConversationStore(ctx.storage, String(env.SEARCH_ENGINE ?? "").trim().toLowerCase() === "like");
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
  private repeatOf(key: string, message: string, kind: TurnRequest["kind"] = "chat"): Promise<ChatReply | Failure> | Failure | null {
    const running = this.pendingKeys.get(key);
    if (running) {
      if (running.asked !== message) return keyReused();
      return running.outcome.then((o) => (o.ok ? { ...o, replayed: true } : o));
    }
    const stored = this.ledger.findTurn(key, Date.now());
    if (stored === null) return null;
    if (stored.asked !== message) return keyReused();
    const reply = replayOf(stored, this.store.byInternal(stored.conversation)?.id);
    // As the first answer had it: a regenerated reply stored no question, a continued one is the same message.
    if (kind === "regenerate") reply.userMessageId = null;
    if (kind === "continue") delete reply.userMessageId;
    return Promise.resolve(reply);
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

  /**
   * Where a turn goes, decided once it holds the user's queue (so nothing moves under it): the
   * conversation, the parent of what it will store, and the context the model sees (the branch only).
   * Throws the 4xx a client can act on: an unknown conversation or message, or a turn that does not
   * apply (an archived conversation, nothing to regenerate or continue).
   */
  private plan(request: TurnRequest): TurnPlan {
    const store = this.store;
    let conversation: ConversationRow;
    if (request.conversationId === undefined) {
      conversation = store.mostRecent() ?? store.create();
    } else {
      conversation = store.require(request.conversationId);
    }
    if (conversation.archived) {
      throw conflict("This conversation is archived.", `restore ${conversation.id} before adding to it`);
    }
    const leaf = conversation.leaf === null ? null : store.message(conversation.leaf);
    switch (request.kind) {
      case "chat": {
        const message = request.message!;
        return {
          conversation,
          parent: leaf,
          userMessage: message,
          extend: null,
          context: () => store.contextFrom(leaf?.seq ?? null),
          incoming: { role: "user", content: message },
        };
      }
      case "edit": {
        let target: MessageRow | undefined;
        if (request.messageId !== undefined) {
          target = store.requireMessage(conversation, request.messageId);
          if (target.role !== "user") {
            throw new ApiError("bad_request", "Only a user message can be edited.", `message ${target.seq} is the assistant's`);
          }
        } else {
          for (const m of store.branchFrom(leaf?.seq ?? null)) {
            if (m.role === "user") {
              target = m;
              break;
            }
          }
          if (!target) throw conflict("There is no message to edit.", `${conversation.id} has no user message`);
        }
        const parent = target.parent === null ? null : store.message(target.parent);
        const message = request.message!;
        return {
          conversation,
          parent,
          userMessage: message,
          extend: null,
          context: () => store.contextFrom(parent?.seq ?? null),
          incoming: { role: "user", content: message },
        };
      }
      case "regenerate": {
        let reply: MessageRow | null = leaf;
        if (request.messageId !== undefined) {
          reply = store.requireMessage(conversation, request.messageId);
          if (reply.role !== "assistant") {
            throw new ApiError("bad_request", "Only a reply can be regenerated.", `message ${reply.seq} is the user's`);
          }
        }
        const question = reply === null ? null : reply.role === "user" ? reply : reply.parent === null ? null : store.message(reply.parent);
        if (question === null || question.role !== "user") {
          throw conflict("There is no reply to regenerate.", `${conversation.id} has no exchange yet`);
        }
        return {
          conversation,
          parent: question,
          userMessage: null,
          extend: null,
          context: () => store.contextFrom(question.parent),
          incoming: { role: "user", content: question.content },
        };
      }
      case "continue": {
        if (leaf === null || leaf.role !== "assistant" || !(leaf.truncated || leaf.stopped)) {
          throw conflict(
            "There is no cut reply to continue.",
            "continue goes on with the current branch's last reply when it stopped at max_tokens or was stopped",
          );
        }
        return {
          conversation,
          parent: leaf.parent === null ? null : store.message(leaf.parent),
          userMessage: null,
          extend: leaf,
          context: () => store.contextFrom(leaf.seq),
          incoming: { role: "user", content: CONTINUE_PROMPT },
        };
      }
    }
  }

  /**
   * Stores a turn the model answered, in one transaction with its charge and its idempotency key, and
   * makes its reply the conversation's current leaf. A conversation purged meanwhile fails the turn.
   */
  private commit(
    plan: TurnPlan,
    turn: { text: string; usage?: Usage; stopped: boolean; received: string; sent: number },
    key: string | undefined,
    fingerprint: string,
  ): ChatReply {
    const settings = readSettings(this.env);
    const { limits } = readLimits(this.env);
    const truncated = turn.usage?.completion_tokens !== undefined && turn.usage.completion_tokens >= settings.maxTokens;
    const now = Date.now();
    const time = new Date(now).toISOString();
    let firstReply = false;
    const reply = this.ctx.storage.transactionSync((): ChatReply => {
      const conversation = this.store.byInternal(plan.conversation.internal);
      if (!conversation) throw new ApiError("conversation_not_found", "The conversation was deleted during the turn.", plan.conversation.id);
      let assistant: MessageRow;
      let userMessageId: number | null | undefined;
      let messageCount: number;
      let message: string;
      if (plan.extend) {
        assistant = this.store.extendReply(conversation, plan.extend, turn.text, truncated, turn.stopped, time);
        messageCount = assistant.depth;
        message = assistant.content;
      } else {
        const stored = this.store.appendTurn(
          conversation,
          plan.parent,
          plan.userMessage === null ? null : { role: "user", content: plan.userMessage, time: turn.received },
          { role: "assistant", content: turn.text, time, stopped: turn.stopped },
          truncated,
        );
        assistant = stored.assistant;
        userMessageId = stored.user?.seq ?? null;
        messageCount = stored.messageCount;
        message = turn.text;
        if (conversation.titleSource === null) {
          // The first reply: a title from the first words at once, and the model's later.
          const first = this.store.firstExchange(conversation);
          this.store.setTitle(conversation, titleFromWords(first?.user ?? plan.userMessage ?? ""), "words");
          firstReply = true;
        }
      }
      this.ledger.charge(now, tokensOf(turn.usage, turn.sent, turn.text));
      if (key) this.ledger.rememberTurn(key, now, messageCount, turn.usage, limits.idempotencyKeys, assistant.seq, fingerprint);
      const answer: ChatReply = {
        ok: true,
        message,
        messageCount,
        conversationId: conversation.id,
        messageId: assistant.seq,
        truncated,
      };
      if (userMessageId !== undefined) answer.userMessageId = userMessageId;
      if (plan.extend) answer.appended = turn.text;
      if (turn.usage) answer.usage = turn.usage;
      return answer;
    });
    if (firstReply && readLibrarySettings(this.env).autoTitles) {
      // Not awaited: the answer goes out now; the title follows when the small model has made it.
      this.ctx.waitUntil(this.makeTitle(plan.conversation.internal));
    }
    return reply;
  }

  /**
   * Asks the small model for a conversation's title after its first reply. Its tokens count against
   * the user's daily tokens (not as a turn); it is skipped when that limit is reached, and a failure
   * keeps the first-words title. A title the user set meanwhile is never replaced.
   */
  private async makeTitle(internal: number): Promise<void> {
    try {
      const library = readLibrarySettings(this.env);
      const { limits } = readLimits(this.env);
      const row = this.store.byInternal(internal);
      const first = row && this.store.firstExchange(row);
      if (!row || !first || row.titleSource === "user") return;
      if (limits.dailyTokens !== null && this.ledger.tokensUsed(Date.now()) >= limits.dailyTokens) return;
      const clip = (text: string): string => (text.length > 1500 ? `${text.slice(0, 1500)}…` : text);
      const messages: ChatMessage[] = [
        { role: "system", content: TITLE_PROMPT },
        { role: "user", content: `User: ${clip(first.user)}\n\nAssistant: ${clip(first.assistant)}` },
      ];
      const result = await withTimeout(
        this.env.AI.run(library.titleModel, { messages, max_tokens: TITLE_MAX_TOKENS, temperature: 0.2 }),
        TITLE_TIMEOUT_MS,
        "no title in time",
      );
      const reply = readResult(result);
      if (!reply) return;
      this.ledger.charge(Date.now(), tokensOf(reply.usage, inputEstimate(messages), reply.text));
      const title = titleFromModel(reply.text);
      const now = this.store.byInternal(internal);
      if (title !== "" && now && now.titleSource !== "user") this.store.setTitle(now, title, "model");
    } catch (err) {
      console.warn("title not made:", err instanceof Error ? err.message : String(err));
    }
  }

  /** One turn, answered whole. Nothing is stored unless the model answers. */
  async chat(userId: string, message: string | TurnRequest, options: TurnOptions = {}): Promise<ChatReply | Failure> {
    const request: TurnRequest = typeof message === "string" ? { kind: "chat", message } : message;
    const fingerprint = fingerprintOf(request);
    const key = options.idempotencyKey;
    if (key) {
      const repeat = this.repeatOf(key, fingerprint, request.kind);
      if (repeat) return repeat;
    }
    const settleKey = this.beginKey(key, fingerprint);
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    let answer: ChatReply | Failure;
    try {
      const settings = readSettings(this.env);
      const { limits } = readLimits(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.store.rememberOwner(userId);
      const plan = this.plan(request);
      this.ledger.admitTurn(limits, Date.now());
      let sent = 0;
      const reply = await this.withContextRetry(settings, plan, (messages) => {
        sent = inputEstimate(messages);
        return runModel(this.env.AI, settings, messages);
      });
      answer = this.commit(plan, { text: reply.text, usage: reply.usage, stopped: false, received, sent }, key, fingerprint);
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
  async chatStream(userId: string, message: string | TurnRequest, options: TurnOptions = {}): Promise<ChatStream | Failure> {
    const request: TurnRequest = typeof message === "string" ? { kind: "chat", message } : message;
    const fingerprint = fingerprintOf(request);
    const key = options.idempotencyKey;
    if (key) {
      const repeat = this.repeatOf(key, fingerprint, request.kind);
      if (repeat instanceof Promise) return this.replayStream(repeat);
      if (repeat) return repeat;
    }
    const settleKey = this.beginKey(key, fingerprint);
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    let settings: Settings;
    let modelStream: ReadableStream<Uint8Array>;
    let sent = 0;
    let plan: TurnPlan;
    const { limits } = readLimits(this.env);
    try {
      settings = readSettings(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.store.rememberOwner(userId);
      plan = this.plan(request);
      this.ledger.admitTurn(limits, Date.now());
      modelStream = await this.withContextRetry(settings, plan, (messages) => {
        sent = inputEstimate(messages);
        return streamModel(this.env.AI, settings, messages);
      });
    } catch (err) {
      release?.();
      const refused = failure(err);
      settleKey?.(refused);
      return refused;
    }
    const ledger = this.ledger;
    const commit = this.commit.bind(this);
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
        const storeTurn = (stopped: boolean): ChatReply =>
          commit(plan, { text, usage, stopped, received, sent }, key, fingerprint);
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
              const reply = storeTurn(cancelled);
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
   * A page of a conversation's current branch, oldest first, without the system prompt: the newest
   * messages of `conversationId` (default: the most recent conversation), or those above the cursor
   * `before`; at most `limit` of them and at most `maxBytes` of JSON.
   */
  async history(
    userId: string,
    limit: number | null,
    before: Cursor | null = null,
    maxBytes: number = Number.MAX_SAFE_INTEGER,
    conversationId: string | null = null,
  ): Promise<HistoryAnswer | Failure> {
    try {
      const named = conversationId !== null ? this.store.require(conversationId) : null;
      // A cursor names its conversation (a conversationId beside it must be the same one).
      const row = before !== null ? this.store.byInternal(before.conversation) : (named ?? this.store.mostRecent());
      const page =
        before === null && row === null
          ? { messages: [], messageCount: 0, previous: null }
          : this.store.historyPage(before !== null ? named : row, before, limit, maxBytes);
      return {
        ok: true,
        userId: this.store.owner ?? userId,
        conversationId: row?.id ?? null,
        title: row?.title ?? null,
        messageCount: page.messageCount,
        messages: page.messages,
        previous: page.previous,
      };
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Starts afresh: archives the most recent conversation (when it has messages) and opens a new one.
   * It waits its turn like a chat, so a reset never lands between a turn's model call and its write.
   */
  async reset(userId: string): Promise<ResetAnswer | Failure> {
    let release: (() => void) | undefined;
    try {
      release = await this.turns.acquire(readSettings(this.env).maxQueuedTurns);
      this.store.rememberOwner(userId);
      const current = this.store.mostRecent();
      if (current !== null && current.messageCount === 0) {
        return { ok: true, messageCount: 0, archived: null, conversationId: current.id };
      }
      const fresh = this.ctx.storage.transactionSync(() => {
        if (current) this.store.setArchived(current, true);
        return this.store.create();
      });
      return { ok: true, messageCount: 0, archived: current?.id ?? null, conversationId: fresh.id };
    } catch (err) {
      return failure(err);
    } finally {
      release?.();
    }
  }

  // --- the conversation library (docs/protocol.md, `conversations`) -----------------------------------

  private info(row: ConversationRow): ConversationInfo {
    return this.store.info(row, readLibrarySettings(this.env).trashDays);
  }

  private tidy(): void {
    this.store.purgeExpired(Date.now(), readLibrarySettings(this.env).trashDays);
  }

  /** The conversations, newest activity first: active ones, archived ones, or the trash. */
  async listConversations(userId: string, which: "active" | "archived" | "trash"): Promise<ListAnswer | Failure> {
    try {
      this.tidy();
      return {
        ok: true,
        conversations: this.store.list(which).map((row) => this.info(row)),
        current: this.store.mostRecent()?.id ?? null,
      };
    } catch (err) {
      return failure(err);
    }
  }

  async getConversation(userId: string, id: string): Promise<ConversationAnswer | Failure> {
    try {
      return { ok: true, conversation: this.info(this.store.require(id, { trash: true })) };
    } catch (err) {
      return failure(err);
    }
  }

  /** A new, empty conversation, which becomes the most recent one; `title` is the user's when given. */
  async createConversation(userId: string, title: string | null): Promise<ConversationAnswer | Failure> {
    try {
      this.store.rememberOwner(userId);
      this.tidy();
      const clean = title === null ? null : sanitizeTitle(title);
      if (clean === "") throw new ApiError("bad_request", "The title is empty.", "give a title with something printable in it");
      const row = clean === null ? this.store.create() : this.store.create(clean, "user");
      return { ok: true, conversation: this.info(row) };
    } catch (err) {
      return failure(err);
    }
  }

  async renameConversation(userId: string, id: string, title: string): Promise<ConversationAnswer | Failure> {
    try {
      const row = this.store.require(id);
      const clean = sanitizeTitle(title);
      if (clean === "") throw new ApiError("bad_request", "The title is empty.", "give a title with something printable in it");
      this.store.setTitle(row, clean, "user");
      return { ok: true, conversation: this.info(this.store.require(id)) };
    } catch (err) {
      return failure(err);
    }
  }

  async archiveConversation(userId: string, id: string): Promise<ConversationAnswer | Failure> {
    try {
      const row = this.store.require(id);
      if (!row.archived) this.store.setArchived(row, true);
      return { ok: true, conversation: this.info(this.store.require(id)) };
    } catch (err) {
      return failure(err);
    }
  }

  /** Brings a conversation back from the archive or from the trash: it is active again. */
  async restoreConversation(userId: string, id: string): Promise<ConversationAnswer | Failure> {
    try {
      const row = this.store.require(id, { trash: true });
      this.ctx.storage.transactionSync(() => {
        if (row.deletedAt !== null) this.store.setDeleted(row, false);
        if (row.archived) this.store.setArchived(row, false);
      });
      return { ok: true, conversation: this.info(this.store.require(id)) };
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Moves a conversation to the trash (kept TRASH_DAYS days, restorable), or with `purge` deletes one
   * already in the trash for good.
   */
  async deleteConversation(
    userId: string,
    id: string,
    purge: boolean,
  ): Promise<{ ok: true; conversation: ConversationInfo | null; purged: boolean } | Failure> {
    try {
      const row = this.store.require(id, { trash: true });
      if (purge) {
        if (row.deletedAt === null) throw conflict("Only a conversation in the trash can be purged.", `delete ${id} first, then purge it`);
        this.store.purge(row);
        return { ok: true, conversation: null, purged: true };
      }
      if (row.deletedAt === null) this.store.setDeleted(row, true);
      return { ok: true, conversation: this.info(this.store.require(id, { trash: true })), purged: false };
    } catch (err) {
      return failure(err);
    }
  }

  /** Shows the branch through `messageId`: the leaf becomes the newest message below it. */
  async switchBranch(userId: string, id: string, messageId: number): Promise<ConversationAnswer | Failure> {
    try {
      const row = this.store.require(id);
      const message = this.store.requireMessage(row, messageId);
      this.store.setLeaf(row, this.store.newestLeafBelow(row, message.seq));
      return { ok: true, conversation: this.info(this.store.require(id)) };
    } catch (err) {
      return failure(err);
    }
  }

  async search(userId: string, q: string, limit: number): Promise<SearchAnswer | Failure> {
    try {
      this.tidy();
      return { ok: true, results: this.store.search(q, limit), engine: this.store.engine };
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Fits the conversation to the window and calls the model; when the model still finds it too long
   * (its tokenizer counted more than the estimate), tries once more with a budget scaled by its count.
   */
  private async withContextRetry<T>(
    settings: Settings,
    plan: TurnPlan,
    call: (messages: ChatMessage[]) => Promise<T>,
  ): Promise<T> {
    const system: ChatMessage = { role: "system", content: settings.systemPrompt };
    const incoming = plan.incoming;
    let budget = inputBudget(settings.contextWindow, settings.maxTokens);
    const fit = (): FittedContext => {
      const fitted = fitContext(system, plan.context(), incoming, budget);
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
