// One source for what the Python package and the Worker share (src/edgechat_tui/core/data/): the
// Worker's effective defaults and model table are models.json's, and its user-id check gives every
// case of userid_cases.json the expected result. The Python side is held to the same files.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { OPTIONS, buildIsStale, buildWorker } from "../scripts/build.mjs";
import { TOKENS_PER_MESSAGE, estimateTokens, readSettings, userIdProblem, userIdRule } from "../dist/units.js";
import { SHARED_MODELS, USER_ID_CASES } from "./helpers.mjs";

const { defaults, models, token_estimate: estimate } = SHARED_MODELS;

/** The vars the Worker is deployed with (wrangler.jsonc), as the tests' build recorded them. */
async function deployedVars() {
  if (buildIsStale()) await buildWorker();
  return JSON.parse(readFileSync(OPTIONS, "utf8")).bindings;
}

function shown(id) {
  return JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…(${id.length})` : id);
}

describe("models.json", () => {
  it("is well formed: a listed default model, windows in tokens, defaults in range", () => {
    assert.equal(SHARED_MODELS.schema, 1);
    assert.ok(Object.keys(models).length >= 1);
    for (const [id, model] of Object.entries(models)) {
      assert.match(id, /^@[a-z]+\/[\w.-]+\/[\w.-]+$/, id);
      assert.ok(Number.isInteger(model.context_window) && model.context_window >= 1000, id);
    }
    assert.ok(defaults.model in models, "the default model has a known window");
    assert.ok(Number.isInteger(defaults.max_tokens) && defaults.max_tokens >= 16);
    assert.ok(defaults.max_tokens <= models[defaults.model].context_window / 2, "max_tokens leaves room for the input");
    assert.ok(defaults.temperature >= 0 && defaults.temperature <= 5);
    assert.ok(Number.isInteger(defaults.unknown_model_context_window));
    assert.ok(defaults.unknown_model_context_window <= Math.min(...Object.values(models).map((m) => m.context_window)),
      "an unknown model is assumed no larger than the smallest known one");
    assert.equal(typeof defaults.system_prompt, "string");
    assert.ok(defaults.system_prompt.trim() !== "");
  });

  it("gives the Worker its effective defaults, as deployed with wrangler.jsonc", async () => {
    const settings = readSettings(await deployedVars());
    assert.equal(settings.model, defaults.model);
    assert.equal(settings.maxTokens, defaults.max_tokens);
    assert.equal(settings.temperature, defaults.temperature);
    assert.equal(settings.systemPrompt, defaults.system_prompt);
    assert.equal(settings.contextWindow, models[defaults.model].context_window);
    // Without any vars at all, the same.
    assert.deepEqual(readSettings({}), settings);
  });

  it("gives the Worker its context window for every model, and the fallback for others", () => {
    for (const [id, model] of Object.entries(models)) {
      const settings = readSettings({ MODEL: id });
      assert.equal(settings.contextWindow, model.context_window, id);
      assert.equal(settings.maxTokens, Math.min(defaults.max_tokens, Math.floor(model.context_window / 2)), id);
    }
    const unknown = readSettings({ MODEL: "@cf/some/model-not-in-the-table" });
    assert.equal(unknown.contextWindow, defaults.unknown_model_context_window);
    assert.equal(unknown.maxTokens, Math.min(defaults.max_tokens, Math.floor(defaults.unknown_model_context_window / 2)));
    // Invalid vars fall back to the JSON's defaults, not to figures of the Worker's own.
    assert.equal(readSettings({ TEMPERATURE: "9" }).temperature, defaults.temperature);
    assert.equal(readSettings({ MAX_TOKENS: "lots" }).maxTokens, defaults.max_tokens);
  });

  it("gives the Worker its token estimate", () => {
    assert.equal(TOKENS_PER_MESSAGE, estimate.tokens_per_message);
    for (const bytes of [0, 1, estimate.bytes_per_token, 10 * estimate.bytes_per_token + 1, 3000]) {
      assert.equal(
        estimateTokens({ content: "x".repeat(bytes) }),
        Math.ceil(bytes / estimate.bytes_per_token) + estimate.tokens_per_message,
        `${bytes} bytes`,
      );
    }
  });
});

describe("userid_cases.json", () => {
  const { cases, reasons } = USER_ID_CASES;

  it("is well formed: unique string ids, a known reason for each invalid one", () => {
    assert.equal(USER_ID_CASES.schema, 1);
    assert.ok(cases.some((c) => c.valid) && cases.some((c) => !c.valid));
    assert.equal(new Set(cases.map((c) => c.id)).size, cases.length, "ids are unique");
    for (const c of cases) {
      assert.equal(typeof c.id, "string");
      assert.equal(typeof c.valid, "boolean");
      if (c.valid) assert.equal(c.reason, undefined, shown(c.id));
      else assert.ok(reasons.includes(c.reason), `${shown(c.id)}: ${c.reason}`);
    }
    for (const reason of reasons) assert.ok(cases.some((c) => c.reason === reason), `a case for ${reason}`);
  });

  it("gives every case its expected result in worker/src/userid.ts", () => {
    const wrong = [];
    for (const c of cases) {
      const rule = userIdRule(c.id);
      const expected = c.valid ? null : c.reason;
      if (rule !== expected) wrong.push(`${shown(c.id)}: expected ${expected}, got ${rule}`);
      // The text a client reads agrees with the rule.
      assert.equal(userIdProblem(c.id) === null, c.valid, shown(c.id));
    }
    assert.deepEqual(wrong, []);
    assert.ok(cases.length >= 50, `${cases.length} cases`);
  });
});
