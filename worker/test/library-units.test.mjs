// The conversation library's pure parts: ids, titles, search terms and snippets.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CONVERSATION_ID,
  conversationId,
  conversationIdTime,
  ftsQuery,
  makeSnippet,
  queryTerms,
  sanitizeTitle,
  titleFromModel,
  titleFromWords,
} from "../dist/units.js";

describe("conversation ids", () => {
  it("are 14 file-safe characters that sort as their creation times and carry them", () => {
    const times = [0, 1, 31, 32, 1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000, 2 ** 50 - 1];
    const ids = times.map((t) => conversationId(t, 0xfffff));
    for (const [i, id] of ids.entries()) {
      assert.match(id, CONVERSATION_ID);
      assert.match(id, /^[0-9a-z]+$/);
      assert.equal(conversationIdTime(id), times[i]);
    }
    assert.deepEqual([...ids].sort(), ids);
    assert.notEqual(conversationId(5, 1), conversationId(5, 2));
    for (const bad of ["0123456789abci", "0123456789ABCD", "0123456789abc", "0123456789abcd/", "../../etc/pass"]) {
      assert.doesNotMatch(bad, CONVERSATION_ID);
    }
  });
});

describe("titles", () => {
  it("are one line of printable text, bounded, and never empty of meaning by accident", () => {
    assert.equal(sanitizeTitle("  a\tb\r\nc\u0000d\u200be\u2028f\u202eg  "), "a b c d e f g");
    assert.equal(sanitizeTitle("\u0007\u0008"), "");
    const long = sanitizeTitle("word ".repeat(50));
    assert.ok(Array.from(long).length <= 80);
    assert.ok(long.endsWith("…") && !long.endsWith(" …"));
    assert.equal(Array.from(sanitizeTitle("😀".repeat(200))).length, 80);
    assert.equal(titleFromModel('Title: "Trip to Lisbon."\nHere is why'), "Trip to Lisbon");
    assert.equal(titleFromModel("**Title:** Sourdough basics"), "Sourdough basics");
    assert.equal(titleFromModel("\n\n  Chess openings  \n"), "Chess openings");
    assert.equal(titleFromWords("What is the capital of Portugal and why is it there"), "What is the capital of Portugal and why…");
    assert.equal(titleFromWords("short one"), "short one");
  });
});

describe("search terms and snippets", () => {
  it("folds case and accents, quotes every term, and lets no query syntax through", () => {
    assert.deepEqual(queryTerms('Café NEAR(x) col:y "z" -w *'), ["cafe", "near", "x", "col", "y", "z", "w"]);
    assert.deepEqual(queryTerms("***"), []);
    assert.equal(ftsQuery(["a", 'b"c']), '"a"* "b""c"*');
    assert.equal(queryTerms("a ".repeat(40)).length, 1);
  });

  it("marks matched words by code point offsets, in plain text", () => {
    const { snippet, highlights } = makeSnippet("Un café 😀 à Lisbonne, CAFÉ noir", ["cafe"]);
    const points = Array.from(snippet);
    assert.deepEqual(highlights.map(([s, e]) => points.slice(s, e).join("")), ["café", "CAFÉ"]);
    const hostile = makeSnippet("<b>x</b>\u0000\u001b[31m red \u0002y\u0003", ["red", "y"]);
    assert.equal(hostile.snippet, "<b>x</b>  [31m red  y ");
    assert.deepEqual(hostile.highlights.map(([s, e]) => Array.from(hostile.snippet).slice(s, e).join("")), ["red", "y"]);
  });
});
