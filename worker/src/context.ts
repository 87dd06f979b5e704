/**
 * Fitting a conversation into the model's context window.
 *
 * Workers AI rejects a request whose input plus `max_tokens` exceeds the window (error 5021), and the
 * Worker has no tokenizer, so it estimates: Llama 3's tokenizer averages about four bytes of English per
 * token and rarely fewer than three for code, digits or CJK, so counting one token per three UTF-8
 * bytes over-counts ordinary text by a third. That margin is the price of never sending a request the
 * model must refuse; when it still does, the caller retries once with a budget scaled by the model's
 * own count (see `budgetAfterRejection`).
 */

import shared from "../../src/edgechat_tui/core/data/models.json";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/**
 * Tokens the chat template adds around each message (role header and end-of-turn marker), and the
 * bytes counted as one token: the Python client estimates with the same figures (models.json).
 */
export const TOKENS_PER_MESSAGE: number = shared.token_estimate.tokens_per_message;
const BYTES_PER_TOKEN: number = shared.token_estimate.bytes_per_token;
/** Tokens kept free beside the estimate for the template's own preamble. */
export const WINDOW_MARGIN = 64;

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** UTF-8 length of `text` without allocating an encoded copy. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      // A surrogate pair is one code point of four bytes.
      bytes += 4;
      i++;
    } else bytes += 3; // includes a lone surrogate, which encodes as U+FFFD

  }
  return bytes;
}

export function estimateTokens(message: { content: string }): number {
  return Math.ceil(utf8Length(message.content) / BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE;
}

/** Tokens the estimated input may use: the window less the reply's `max_tokens` and a margin. */
export function inputBudget(contextWindow: number, maxTokens: number): number {
  return contextWindow - maxTokens - WINDOW_MARGIN;
}

export interface FittedContext {
  messages: ChatMessage[];
  /** Stored messages (excluding the system prompt and the new message) that made it in. */
  historyUsed: number;
  estimatedTokens: number;
}

/**
 * Builds the messages for one turn: the system prompt, as many of the newest stored messages as fit,
 * and the new user message. Returns null when the system prompt and the new message alone exceed the
 * budget, which no trimming can fix.
 *
 * `newestFirst` yields stored messages from the newest back; it is read only as far as needed, so a
 * long conversation costs no more per turn than a short one.
 */
export function fitContext(
  system: ChatMessage,
  newestFirst: Iterable<ChatMessage>,
  incoming: ChatMessage,
  budget: number,
): FittedContext | null {
  const fixed = estimateTokens(system) + estimateTokens(incoming);
  if (fixed > budget) return null;
  let used = fixed;
  const kept: ChatMessage[] = [];
  for (const message of newestFirst) {
    const cost = estimateTokens(message);
    // Stop at the first message that does not fit: the model sees an unbroken recent stretch.
    if (used + cost > budget) break;
    kept.push(message);
    used += cost;
  }
  // The oldest kept message should open an exchange: a reply without its question misleads the model.
  while (kept.length > 0 && kept[kept.length - 1]!.role === "assistant") {
    used -= estimateTokens(kept.pop()!);
  }
  kept.reverse();
  return { messages: [system, ...kept, incoming], historyUsed: kept.length, estimatedTokens: used };
}

/**
 * When the model refuses a request as too long although the estimate fit, its error says how many
 * tokens it counted ("… input and maximum output tokens (N) exceeded … (W)"). Returns a smaller budget
 * for a second attempt, scaled by how far the estimate was off, or null when the message gives no count.
 */
export function budgetAfterRejection(
  errorText: string,
  sentEstimate: number,
  budget: number,
  maxTokens: number,
  contextWindow: number,
): number {
  const counted = /\((\d+)\)[^()]*\((\d+)\)/.exec(errorText);
  if (counted) {
    const modelInput = Number(counted[1]) - maxTokens;
    const window = Number(counted[2]) || contextWindow;
    if (modelInput > 0 && sentEstimate > 0) {
      const ratio = modelInput / sentEstimate;
      return Math.floor((window - maxTokens - WINDOW_MARGIN) / ratio * 0.95);
    }
  }
  return Math.floor(budget / 2);
}
