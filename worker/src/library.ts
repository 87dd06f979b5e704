/**
 * Pure helpers of the conversation library (docs/protocol.md, `conversations` and `search`):
 * conversation ids, titles, search queries and the highlighting of snippets. No runtime imports, so
 * the unit tests run them in Node.
 */

/** Crockford's base32 alphabet, lower case: no i, l, o, u; sorts like the numbers it encodes. */
const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";
/** Ten characters of milliseconds (50 bits, good until the year 37,000), then four random ones. */
export const CONVERSATION_ID = /^[0-9a-hjkmnp-tv-z]{14}$/;

function base32(value: number, length: number): string {
  let out = "";
  let n = value;
  for (let i = 0; i < length; i++) {
    out = BASE32[n % 32]! + out;
    n = Math.floor(n / 32);
  }
  return out;
}

/**
 * A conversation id: the creation time in milliseconds then 20 random bits, 14 characters of lower
 * case Crockford base32. Ids sort as their creation times do, and are safe as file names everywhere
 * (no case pairs, no punctuation).
 */
export function conversationId(timeMs: number, random: number = Math.floor(Math.random() * 2 ** 20)): string {
  return base32(Math.max(0, Math.floor(timeMs)), 10) + base32(random % 2 ** 20, 4);
}

/** The creation time an id carries (ms). */
export function conversationIdTime(id: string): number {
  let n = 0;
  for (const ch of id.slice(0, 10)) n = n * 32 + BASE32.indexOf(ch);
  return n;
}

export const MAX_TITLE_CHARS = 80;
/** Control, format and separator characters that must not reach a one-line title. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}]/gu;

/** Cuts `text` to `max` code points, at a word boundary when one is near, adding "…" when cut. */
function cut(text: string, max: number): string {
  const points = Array.from(text);
  if (points.length <= max) return text;
  let head = points.slice(0, max - 1).join("");
  const space = head.lastIndexOf(" ");
  if (space >= max / 2) head = head.slice(0, space);
  return `${head.trimEnd()}…`;
}

/**
 * A title safe to show on one line: control and format characters become spaces, whitespace runs
 * one space, trimmed, at most MAX_TITLE_CHARS code points. Empty when nothing printable is left.
 */
export function sanitizeTitle(raw: string, max: number = MAX_TITLE_CHARS): string {
  const flat = raw.normalize("NFC").replace(UNPRINTABLE, " ").replace(/\s+/gu, " ").trim();
  return cut(flat, max);
}

/** What a title model said, made a title: its first line, without a "Title:" label or quotes. */
export function titleFromModel(reply: string): string {
  const line = reply.replace(/\r/g, "").split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
  const unlabelled = line.replace(/^(?:\*\*)?title(?:\*\*)?\s*[:：]\s*/iu, "");
  const unquoted = unlabelled.replace(/^["'“”«»*`]+|["'“”«»*`.]+$/gu, "");
  return sanitizeTitle(unquoted);
}

/** A title from the first words of the first message (titles made without a model). */
export function titleFromWords(message: string, words = 8): string {
  const flat = sanitizeTitle(message, 1000);
  const head = flat.split(" ").slice(0, words).join(" ");
  return cut(head.length < flat.length ? `${head}…` : head, 60);
}

// --- search ----------------------------------------------------------------------------------------

/** Folds a string for matching: NFKD without combining marks, lower case (as FTS5's unicode61 does). */
function foldChar(ch: string): string {
  return ch.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

const WORD = /[\p{L}\p{N}]+/gu;

/** The words of a search query, folded, at most `max` of them; empty when it has none. */
export function queryTerms(q: string, max = 16): string[] {
  const terms: string[] = [];
  for (const m of q.normalize("NFC").matchAll(WORD)) {
    const folded = Array.from(m[0]).map(foldChar).join("");
    if (folded !== "" && !terms.includes(folded)) terms.push(folded);
    if (terms.length >= max) break;
  }
  return terms;
}

/**
 * The FTS5 query for the terms: every term as a quoted prefix (`"term"*`), all of them required.
 * Quoting makes any text a literal, so no query syntax (NEAR, column filters, `-`) reaches FTS5.
 */
export function ftsQuery(terms: string[]): string {
  return terms.map((t) => `"${t.replace(/"/g, '""')}"*`).join(" ");
}

export interface Snippet {
  /** Plain text around the first match (no markup: a client marks `highlights` itself). */
  snippet: string;
  /** [start, end) offsets into `snippet`, in Unicode code points, of each matched word. */
  highlights: [number, number][];
}

/**
 * A snippet of `content` around its first word starting with one of `terms`, at most `width` code
 * points, with the matched words' offsets. Control characters become spaces (the snippet is one line
 * of plain text); nothing is escaped or marked up, so hostile text stays inert text.
 */
export function makeSnippet(content: string, terms: string[], width = 160): Snippet {
  const points = Array.from(content.normalize("NFC")).map((ch) => (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(ch) ? " " : ch));
  // Words as code point ranges, each with its folded text.
  const words: { start: number; end: number; folded: string }[] = [];
  let i = 0;
  while (i < points.length) {
    if (/[\p{L}\p{N}\p{M}]/u.test(points[i]!)) {
      const start = i;
      let folded = "";
      while (i < points.length && /[\p{L}\p{N}\p{M}]/u.test(points[i]!)) folded += foldChar(points[i++]!);
      words.push({ start, end: i, folded });
    } else i++;
  }
  const matched = words.filter((w) => terms.some((t) => w.folded.startsWith(t)));
  const first = matched[0];
  let from = 0;
  if (first && first.start > width / 3) from = first.start - Math.floor(width / 3);
  // Start at a word boundary, so the snippet does not open on half a word.
  const boundary = words.find((w) => w.start >= from && w.start <= from + 20);
  if (from > 0 && boundary) from = boundary.start;
  const to = Math.min(points.length, from + width);
  const lead = from > 0 ? "…" : "";
  const tail = to < points.length ? "…" : "";
  const offset = lead.length - from;
  const highlights: [number, number][] = matched
    .filter((w) => w.start >= from && w.end <= to)
    .map((w) => [w.start + offset, w.end + offset]);
  return { snippet: lead + points.slice(from, to).join("") + tail, highlights };
}
