/**
 * The Durable Object that keeps one user's conversation: one object per user id, found with
 * `idFromName(userId)`. It answers the Worker over RPC and never sees HTTP.
 */

import { DurableObject } from "cloudflare:workers";
import { readSettings, type Env, type Settings } from "./config";
import { budgetAfterRejection, fitContext, inputBudget, type ChatMessage, type FittedContext } from "./context";
import { ApiError, asApiError, type ErrorBody } from "./errors";
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
}
export interface ChatStream {
  ok: true;
  stream: ReadableStream<Uint8Array>;
  /** Names the turn for `stopTurn`, which the Worker calls when its client hangs up. */
  turnId: string;
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

export class Conversation extends DurableObject<Env> {
  private readonly store: ConversationStore;
  private readonly turns = new TurnQueue();
  /** Streamed turns in progress, by turn id: each entry stops its turn as if its client had left. */
  private readonly liveStreams = new Map<string, () => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous SQL: the schema and the current conversation are ready before the first request
    // (the seed loaded its state asynchronously without blocking, defect 1).
    this.store = new ConversationStore(ctx.storage);
  }

  /** One turn, answered whole. Nothing is stored unless the model answers. */
  async chat(userId: string, message: string): Promise<ChatReply | Failure> {
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    try {
      const settings = readSettings(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.store.rememberOwner(userId);
      const reply = await this.withContextRetry(settings, message, (messages) =>
        runModel(this.env.AI, settings, messages),
      );
      const messageCount = this.store.appendTurn(
        { role: "user", content: message, time: received },
        { role: "assistant", content: reply.text, time: new Date().toISOString() },
      );
      const answer: ChatReply = { ok: true, message: reply.text, messageCount };
      if (reply.usage) answer.usage = reply.usage;
      return answer;
    } catch (err) {
      return failure(err);
    } finally {
      release?.();
    }
  }

  /**
   * One turn, answered as server-sent events (docs/protocol.md, `stream`). Failures before the model
   * starts answering come back as a Failure, so the Worker can still answer with a status code; later
   * ones become an `error` event. The turn holds this user's queue until its stream ends.
   */
  async chatStream(userId: string, message: string): Promise<ChatStream | Failure> {
    const received = new Date().toISOString();
    let release: (() => void) | undefined;
    let settings: Settings;
    let modelStream: ReadableStream<Uint8Array>;
    try {
      settings = readSettings(this.env);
      release = await this.turns.acquire(settings.maxQueuedTurns);
      this.store.rememberOwner(userId);
      modelStream = await this.withContextRetry(settings, message, (messages) =>
        streamModel(this.env.AI, settings, messages),
      );
    } catch (err) {
      release?.();
      return failure(err);
    }
    const store = this.store;
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
        const storeTurn = (stopped: boolean): number =>
          store.appendTurn(
            { role: "user", content: message, time: received },
            { role: "assistant", content: text, time: new Date().toISOString(), stopped },
          );
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
              send(sseEvent("error", failed));
            } else if (cancelled && text === "") {
              // The client left before any text reached it, and puts the message back in its input:
              // storing the turn would duplicate it when the message is sent again.
            } else {
              // The client left before the end: keep what it saw, marked stopped, as the protocol allows.
              const messageCount = storeTurn(cancelled);
              const done: Record<string, unknown> = { message: text, messageCount };
              if (usage) done.usage = usage;
              send(sseEvent("done", done));
            }
          } catch (err) {
            send(sseEvent("error", asApiError(err).toBody()));
          } finally {
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
