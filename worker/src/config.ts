/**
 * The Worker's settings, read from its vars (wrangler.jsonc) with defaults that work for the default
 * model. Read once per request: vars are cheap, and reading them late keeps `wrangler secret put` and
 * var changes effective without code changes.
 */

import type { Conversation } from "./conversation";
import type { IdentityVars } from "./identity";

/** What the Workers AI binding offers that this Worker uses; narrower than the generated `Ai` type. */
export interface AiBinding {
  run(model: string, inputs: Record<string, unknown>, options?: Record<string, unknown>): Promise<unknown>;
}

/** Identity, limit and idempotency vars: identity.ts and limits.ts read them. */
export interface Env extends IdentityVars {
  AI: AiBinding;
  CONVERSATIONS: DurableObjectNamespace<Conversation>;
  MODEL?: string;
  MAX_TOKENS?: string | number;
  TEMPERATURE?: string | number;
  CONTEXT_WINDOW?: string | number;
  SYSTEM_PROMPT?: string;
  MODEL_TIMEOUT_SECONDS?: string | number;
  MAX_QUEUED_TURNS?: string | number;
  EDGECHAT_TOKEN?: string;
  BASE_PATH?: string;
}

export const DEFAULT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast";
export const DEFAULT_SYSTEM_PROMPT =
  "You are a helpful AI assistant. Be concise, friendly, and informative in your responses.";

/**
 * Context windows (input plus max_tokens) of models edgechat is used with, from Cloudflare's model
 * catalogue. A model not listed here gets the smallest figure unless CONTEXT_WINDOW says otherwise.
 */
const CONTEXT_WINDOWS: Record<string, number> = {
  "@cf/meta/llama-3.3-70b-instruct-fp8-fast": 24_000,
  "@cf/meta/llama-3.1-8b-instruct-fast": 128_000,
  "@cf/meta/llama-3.1-8b-instruct-fp8": 32_000,
  "@cf/meta/llama-4-scout-17b-16e-instruct": 131_000,
  "@cf/mistralai/mistral-small-3.1-24b-instruct": 128_000,
  "@cf/qwen/qwen3-30b-a3b-fp8": 32_768,
};
const FALLBACK_CONTEXT_WINDOW = 24_000;

export interface Settings {
  model: string;
  maxTokens: number;
  temperature: number;
  contextWindow: number;
  systemPrompt: string;
  modelTimeoutMs: number;
  maxQueuedTurns: number;
}

function numberVar(value: string | number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(n) || n < min || n > max) return fallback;
  return n;
}

export function readSettings(env: Env): Settings {
  const model = env.MODEL?.trim() || DEFAULT_MODEL;
  const contextWindow = Math.floor(
    numberVar(env.CONTEXT_WINDOW, CONTEXT_WINDOWS[model] ?? FALLBACK_CONTEXT_WINDOW, 1_000, 10_000_000),
  );
  // max_tokens counts against the window; never let it eat more than half of it.
  const maxTokens = Math.min(
    Math.floor(numberVar(env.MAX_TOKENS, 2048, 16, 1_000_000)),
    Math.floor(contextWindow / 2),
  );
  return {
    model,
    maxTokens,
    temperature: numberVar(env.TEMPERATURE, 0.7, 0, 5),
    contextWindow,
    systemPrompt: env.SYSTEM_PROMPT?.trim() || DEFAULT_SYSTEM_PROMPT,
    modelTimeoutMs: numberVar(env.MODEL_TIMEOUT_SECONDS, 120, 0.05, 3600) * 1000,
    maxQueuedTurns: Math.floor(numberVar(env.MAX_QUEUED_TURNS, 64, 1, 10_000)),
  };
}
