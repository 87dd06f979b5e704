/**
 * Per-user limits (USER_DAILY_TOKENS, USER_TURNS_PER_MINUTE) and the idempotency-key bound
 * (IDEMPOTENCY_KEYS): reading the vars and the arithmetic of the windows. Pure; the counting itself
 * happens in each user's Durable Object (ledger.ts), so one user's use never limits another's.
 */

import { ApiError } from "./errors";

export interface Limits {
  /** Model tokens (as the model reports them) one user may use per UTC day; null: no limit. */
  dailyTokens: number | null;
  /** Turns one user may start in any 60 seconds; null: no limit. */
  turnsPerMinute: number | null;
  /** Idempotency keys remembered per user (the newest ones), each for at most IDEMPOTENCY_TTL_MS. */
  idempotencyKeys: number;
}

export const DEFAULT_IDEMPOTENCY_KEYS = 1000;
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
export const MINUTE_MS = 60_000;

export interface LimitVars {
  USER_DAILY_TOKENS?: string | number;
  USER_TURNS_PER_MINUTE?: string | number;
  IDEMPOTENCY_KEYS?: string | number;
}

/** A var that must be a whole number from min to max when it is set at all; null when unset. */
function wholeVar(name: string, value: string | number | undefined, min: number, max: number, problems: string[]): number | null {
  if (value === undefined) return null;
  const text = typeof value === "number" ? String(value) : value.trim();
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    // A typo must not silently lift a limit the operator meant to set.
    problems.push(`${name} must be a whole number from ${min} to ${max}`);
    return null;
  }
  return Number(text);
}

export function readLimits(env: LimitVars): { limits: Limits; problems: string[] } {
  const problems: string[] = [];
  const limits: Limits = {
    dailyTokens: wholeVar("USER_DAILY_TOKENS", env.USER_DAILY_TOKENS, 1, 1e12, problems),
    turnsPerMinute: wholeVar("USER_TURNS_PER_MINUTE", env.USER_TURNS_PER_MINUTE, 1, 1e6, problems),
    idempotencyKeys: wholeVar("IDEMPOTENCY_KEYS", env.IDEMPOTENCY_KEYS, 1, 100_000, problems) ?? DEFAULT_IDEMPOTENCY_KEYS,
  };
  return { limits, problems };
}

/** The UTC day of a time, as the key its usage is counted under. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The start of the next UTC day. */
export function nextUtcMidnight(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

export function quotaError(limit: "daily_tokens" | "turns_per_minute", message: string, details: string, resetAtMs: number, nowMs: number): ApiError {
  const retryAfter = Math.max(1, Math.ceil((resetAtMs - nowMs) / 1000));
  return new ApiError("quota_exceeded", message, details, retryAfter, { resetAt: new Date(resetAtMs).toISOString(), limit });
}
