/**
 * The Worker's settings, read from its vars (wrangler.jsonc) with defaults that work for the default
 * model. Read once per request: vars are cheap, and reading them late keeps `wrangler secret put` and
 * var changes effective without code changes.
 */

import type { Conversation } from "./conversation";
import type { IdentityVars } from "./identity";
// The one source of model facts and defaults, shared with the Python package; bundled at build time.
import shared from "../../src/edgechat_tui/core/data/models.json";

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

export const DEFAULT_MODEL: string = shared.defaults.model;
export const DEFAULT_SYSTEM_PROMPT: string = shared.defaults.system_prompt;
export const DEFAULT_MAX_TOKENS: number = shared.defaults.max_tokens;
export const DEFAULT_TEMPERATURE: number = shared.defaults.temperature;

/**
 * Context windows (input plus max_tokens) of models edgechat is used with, from Cloudflare's model
 * catalogue (models.json). A model not listed gets the JSON's cautious figure unless CONTEXT_WINDOW
 * says otherwise.
 */
const CONTEXT_WINDOWS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(shared.models as Record<string, { context_window: number }>).map(([id, m]) => [id, m.context_window]),
);
export const FALLBACK_CONTEXT_WINDOW: number = shared.defaults.unknown_model_context_window;

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
    Math.floor(numberVar(env.MAX_TOKENS, DEFAULT_MAX_TOKENS, 16, 1_000_000)),
    Math.floor(contextWindow / 2),
  );
  return {
    model,
    maxTokens,
    temperature: numberVar(env.TEMPERATURE, DEFAULT_TEMPERATURE, 0, 5),
    contextWindow,
    systemPrompt: env.SYSTEM_PROMPT?.trim() || DEFAULT_SYSTEM_PROMPT,
    modelTimeoutMs: numberVar(env.MODEL_TIMEOUT_SECONDS, 120, 0.05, 3600) * 1000,
    maxQueuedTurns: Math.floor(numberVar(env.MAX_QUEUED_TURNS, 64, 1, 10_000)),
  };
}
