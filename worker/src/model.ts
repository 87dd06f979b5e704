/**
 * Talking to Workers AI through the `AI` binding: the request, the two answer shapes (a JSON result or
 * a server-sent-event stream) and the errors it throws, mapped to codes a client can act on.
 */

import type { AiBinding, Settings } from "./config";
import type { ChatMessage } from "./context";
import { ApiError } from "./errors";

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export interface ModelReply {
  text: string;
  usage?: Usage;
}

/** What one piece of a streamed answer carried. */
export interface StreamPiece {
  text: string;
  usage?: Usage;
}

function modelInputs(settings: Settings, messages: ChatMessage[], stream: boolean): Record<string, unknown> {
  // max_tokens is explicit: the model's default (256) cuts replies off mid-sentence.
  return { messages, max_tokens: settings.maxTokens, temperature: settings.temperature, stream };
}

/** Rejects with a `model_unavailable` error when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ApiError("model_unavailable", "The model did not answer in time.", what)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

export async function runModel(ai: AiBinding, settings: Settings, messages: ChatMessage[]): Promise<ModelReply> {
  const result = await withTimeout(
    ai.run(settings.model, modelInputs(settings, messages, false)),
    settings.modelTimeoutMs,
    `no answer after ${settings.modelTimeoutMs / 1000} s`,
  );
  const reply = readResult(result);
  if (reply === null) {
    throw new ApiError("model_unavailable", "The model returned no reply.", "the result had no response text");
  }
  return reply;
}

export async function streamModel(
  ai: AiBinding,
  settings: Settings,
  messages: ChatMessage[],
): Promise<ReadableStream<Uint8Array>> {
  const result = await withTimeout(
    ai.run(settings.model, modelInputs(settings, messages, true)),
    settings.modelTimeoutMs,
    `no answer after ${settings.modelTimeoutMs / 1000} s`,
  );
  if (result instanceof ReadableStream) return result as ReadableStream<Uint8Array>;
  if (result instanceof Response && result.body) return result.body;
  // Some models answer whole even when asked to stream: present that as a one-piece stream.
  const whole = readResult(result);
  if (whole === null) {
    throw new ApiError("model_unavailable", "The model returned no reply.", "the result had no response text");
  }
  const piece = JSON.stringify({ response: whole.text, usage: whole.usage });
  return new Response(`data: ${piece}\n\ndata: [DONE]\n\n`).body!;
}

function asUsage(value: unknown): Usage | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const usage: Usage = {};
  for (const key of ["prompt_tokens", "completion_tokens", "total_tokens"] as const) {
    const n = (value as Record<string, unknown>)[key];
    if (typeof n === "number") usage[key] = n;
  }
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/** The text of a non-streamed result: `response` (a string, or a number for some models) or OpenAI-style `choices`. */
export function readResult(result: unknown): ModelReply | null {
  if (result === null || typeof result !== "object") return null;
  const record = result as Record<string, unknown>;
  const usage = asUsage(record.usage);
  if (typeof record.response === "string" || typeof record.response === "number") {
    return { text: String(record.response), usage };
  }
  const choice = Array.isArray(record.choices) ? (record.choices[0] as Record<string, unknown> | undefined) : undefined;
  const content = (choice?.message as Record<string, unknown> | undefined)?.content;
  if (typeof content === "string") return { text: content, usage };
  return null;
}

/** A stream the Worker cannot take as a reply: the turn fails (an `error` event) and nothing is stored. */
function malformedStream(details: string): ApiError {
  return new ApiError("model_unavailable", "The model sent a reply stream the agent cannot read.", details);
}

/** A shortened, quotable copy of what the model sent, for `details`. */
function excerpt(data: string): string {
  return JSON.stringify(data.length > 80 ? `${data.slice(0, 80)}…` : data);
}

/**
 * One `data:` payload of the model's stream, or null for `[DONE]`. Unknown keys (padding `p`) are
 * ignored; anything else the Worker cannot read throws, as the Python client's reader does
 * (src/edgechat_tui/agent/workers_ai.py): data that is not a JSON object, a `response` that is not
 * text, and an error the service reports inside the stream (mapped by its code). A reply is never
 * stored with a piece silently missing.
 */
export function readStreamData(data: string): StreamPiece | null {
  if (data.trim() === "[DONE]") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw malformedStream(`the stream carried data that is not JSON: ${excerpt(data)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw malformedStream(`the stream carried data that is not a JSON object: ${excerpt(data)}`);
  }
  const record = parsed as Record<string, unknown>;
  if (reportsError(record.errors) || reportsError(record.error)) throw streamError(record);
  const usage = asUsage(record.usage);
  if (record.response !== undefined && record.response !== null) {
    if (typeof record.response === "string" || typeof record.response === "number") {
      return { text: String(record.response), usage };
    }
    throw malformedStream(`a piece's response is not text: ${excerpt(data)}`);
  }
  const choice = Array.isArray(record.choices) ? (record.choices[0] as Record<string, unknown> | undefined) : undefined;
  const content = (choice?.delta as Record<string, unknown> | undefined)?.content;
  return { text: typeof content === "string" ? content : "", usage };
}

/** Whether an `errors` / `error` field says something went wrong (an empty list or false does not). */
function reportsError(field: unknown): boolean {
  return Array.isArray(field) ? field.length > 0 : Boolean(field);
}

/** An error the service reported inside a stream (`{"errors":[{"code","message"}]}`), mapped like a thrown one. */
function streamError(record: Record<string, unknown>): ApiError {
  const first = Array.isArray(record.errors) ? record.errors[0] : record.error;
  let text: string;
  if (first !== null && typeof first === "object") {
    const { code, message } = first as Record<string, unknown>;
    text = [code, message].filter((part) => part !== undefined && part !== null).join(": ");
  } else {
    text = String(first);
  }
  return mapModelError(new Error(text || "the stream reported an error"));
}

/** The end of a model stream that never said `[DONE]`: the reply may be cut short, so it is not one. */
export function streamEndedEarly(charactersSoFar: number): ApiError {
  return malformedStream(
    charactersSoFar > 0
      ? `the stream ended without [DONE] after ${charactersSoFar} characters: the reply may be cut short`
      : "the stream ended without [DONE] and without any text",
  );
}

/**
 * Splits a byte stream of server-sent events into `data` payloads. Events end at a blank line; lines
 * may end in LF or CRLF and arrive split anywhere, even inside a UTF-8 sequence.
 */
export async function* sseData(
  stream: ReadableStream<Uint8Array>,
  nextChunk: (reader: ReadableStreamDefaultReader<Uint8Array>) => Promise<ReadableStreamReadResult<Uint8Array>>,
): AsyncGenerator<string, void, undefined> {
  const reader = stream.getReader();
  // Fatal: bytes that are not UTF-8 fail the turn rather than becoming U+FFFD in a stored reply.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const decode = (value?: Uint8Array): string => {
    try {
      return value === undefined ? decoder.decode() : decoder.decode(value, { stream: true });
    } catch {
      throw malformedStream("the stream carried bytes that are not UTF-8");
    }
  };
  let buffer = "";
  let dataLines: string[] = [];
  try {
    for (;;) {
      const { done, value } = await nextChunk(reader);
      buffer += done ? decode() : decode(value);
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (dataLines.length > 0) yield dataLines.join("\n");
          dataLines = [];
        } else if (line.startsWith("data:")) {
          dataLines.push(line.slice(5).replace(/^ /, ""));
        }
      }
      if (done) {
        if (buffer.startsWith("data:")) dataLines.push(buffer.slice(5).replace(/^ /, ""));
        if (dataLines.length > 0) yield dataLines.join("\n");
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

const CONTEXT_CODES = new Set([5021, 3010, 3006]);
const QUOTA_CODES = new Set([3036, 4006]);
const RATE_CODES = new Set([3040]);
/** Seconds a client should wait after a capacity error before trying again. */
export const RETRY_AFTER_SECONDS = 5;

/** Whether a model error says the request did not fit the context window. */
export function isContextError(err: unknown): boolean {
  return err instanceof ApiError && err.code === "context_too_long";
}

/**
 * Maps what `env.AI.run` throws (an Error whose message is "<code>: <text>", sometimes prefixed
 * "AiError: ") to an ApiError. The model's text goes into `details` for people; the code decides.
 */
export function mapModelError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const match = /^(?:AiError:\s*)?(\d{3,5})\s*:\s*/.exec(text);
  const code = match ? Number(match[1]) : undefined;
  const lower = text.toLowerCase();
  if (
    (code !== undefined && CONTEXT_CODES.has(code)) ||
    lower.includes("context window") ||
    lower.includes("maximum context length")
  ) {
    return new ApiError("context_too_long", "The conversation does not fit the model's context window.", text);
  }
  if (code !== undefined && QUOTA_CODES.has(code)) {
    return new ApiError("quota_exceeded", "The account's daily Workers AI allocation is used up.", text);
  }
  if ((code !== undefined && RATE_CODES.has(code)) || lower.includes("rate limit") || lower.includes("capacity")) {
    return new ApiError(
      "rate_limited",
      "Capacity temporarily exceeded, please try again.",
      text,
      RETRY_AFTER_SECONDS,
    );
  }
  return new ApiError("model_unavailable", "The model failed to answer.", text);
}
