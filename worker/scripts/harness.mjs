// Runs the Worker and its Durable Object in workerd (through Miniflare) with the Workers AI binding
// replaced by testing/ai-stub.js. Shared by the Node tests and by serve-test.mjs, which the Python
// end-to-end test starts.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { BUNDLE, OPTIONS, WORKER_DIR, buildIsStale, buildWorker } from "./build.mjs";

export const STUB = join(WORKER_DIR, "testing", "ai-stub.js");
/** Context windows the stub knows, by model id (as Workers AI's catalogue gives them). */
export const STUB_MODELS = {
  "@cf/meta/llama-3.3-70b-instruct-fp8-fast": 24000,
  "@cf/meta/llama-3.1-8b-instruct-fast": 128000,
};

/**
 * Starts the agent. Options:
 *   token: sets the EDGECHAT_TOKEN secret; vars: extra or overriding vars;
 *   persist: a directory for Durable Object storage (default: in memory);
 *   host, port: listen on a socket (default: no socket; use `fetch` below);
 *   record: a function receiving each model request ({model, inputs, options}) before the stub
 *     answers it; the stub waits for the promise it returns, and fails the call with a Workers AI
 *     error when it resolves to {error: <code>};
 *   rebuild: bundle even when dist/ is newer than the sources.
 * Returns { mf, url, fetch, dispose }; `fetch(path, init)` dispatches to the Worker.
 */
export async function startAgent({ token, vars = {}, persist, host, port, record, rebuild = false } = {}) {
  if (rebuild || buildIsStale()) await buildWorker();
  const options = JSON.parse(readFileSync(OPTIONS, "utf8"));
  if (options.aiBinding === null) throw new Error("wrangler.jsonc declares no ai binding");
  const bindings = { ...options.bindings, ...vars };
  if (token !== undefined) bindings.EDGECHAT_TOKEN = token;

  const stubBindings = {};
  if (record) {
    stubBindings.RECORD = async (request) => {
      // Awaited: a test may hold a model call here until it has seen what it needs. Returning
      // {error: CODE} makes the call fail with that Workers AI error.
      const verdict = await record(JSON.parse(await request.text()));
      if (verdict && verdict.error) return Response.json({ error: verdict.error });
      return new Response(null, { status: 204 });
    };
  }
  const listen = host !== undefined || port !== undefined;
  const mf = new Miniflare({
    ...(listen ? { host: host ?? "127.0.0.1", port: port ?? 0 } : {}),
    durableObjectsPersist: persist ?? false,
    workers: [
      {
        name: "edgechat-agent",
        modules: true,
        scriptPath: BUNDLE,
        compatibilityDate: options.compatibilityDate,
        compatibilityFlags: options.compatibilityFlags,
        bindings,
        durableObjects: options.durableObjects,
        wrappedBindings: {
          [options.aiBinding]: { scriptName: "ai-stub", bindings: { MODELS: STUB_MODELS } },
        },
      },
      { name: "ai-stub", modules: true, scriptPath: STUB, serviceBindings: stubBindings },
    ],
  });
  const url = await mf.ready;
  return {
    mf,
    url,
    fetch: (path, init) => mf.dispatchFetch(new URL(path, url), init),
    dispose: () => mf.dispose(),
  };
}
