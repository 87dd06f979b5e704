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

/** One `data:` payload of the model's stream, or null for `[DONE]`. Unknown keys (padding `p`) are ignored. */
export function readStreamData(data: string): StreamPiece | null {
  if (data === "[DONE]") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { text: "" };
  }
  if (parsed === null || typeof parsed !== "object") return { text: "" };
  const record = parsed as Record<string, unknown>;
  const usage = asUsage(record.usage);
  if (typeof record.response === "string" || typeof record.response === "number") {
    return { text: String(record.response), usage };
  }
  const choice = Array.isArray(record.choices) ? (record.choices[0] as Record<string, unknown> | undefined) : undefined;
  const content = (choice?.delta as Record<string, unknown> | undefined)?.content;
  return { text: typeof content === "string" ? content : "", usage };
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
  const decoder = new TextDecoder();
  let buffer = "";
  let dataLines: string[] = [];
  try {
    for (;;) {
      const { done, value } = await nextChunk(reader);
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
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
