/**
 * The failures a client can act on, each with a stable code and status (docs/protocol.md,
 * "Errors with stable codes"). Everything that goes wrong ends up as one of these, never as a bare 500.
 */

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "context_too_long"
  | "request_too_large"
  | "rate_limited"
  | "quota_exceeded"
  | "model_unavailable"
  | "internal"
  | "misconfigured"
  | "unavailable";

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  context_too_long: 413,
  request_too_large: 413,
  rate_limited: 429,
  quota_exceeded: 429,
  model_unavailable: 502,
  internal: 500,
  misconfigured: 500,
  unavailable: 503,
};

/** The JSON body of a failure; also the `data` of an SSE `error` event. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
  details?: string;
  retryAfter?: number;
  /** quota_exceeded for a per-user limit: when it resets (ISO 8601) and which limit it is. */
  resetAt?: string;
  limit?: "daily_tokens" | "turns_per_minute";
}

/** A failure that crosses the Durable Object boundary as plain data (RPC keeps no custom error fields). */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details?: string;
  readonly retryAfter?: number;
  readonly extra?: Pick<ErrorBody, "resetAt" | "limit">;

  constructor(code: ErrorCode, message: string, details?: string, retryAfter?: number, extra?: Pick<ErrorBody, "resetAt" | "limit">) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
    this.extra = extra;
  }

  get status(): number {
    return STATUS[this.code];
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { error: this.message, code: this.code };
    if (this.details !== undefined) body.details = this.details;
    if (this.retryAfter !== undefined) body.retryAfter = this.retryAfter;
    if (this.extra) Object.assign(body, this.extra);
    return body;
  }
}

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Turns anything thrown into an ApiError; unknown failures become `internal` without leaking internals. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError("internal", "Internal server error");
}
