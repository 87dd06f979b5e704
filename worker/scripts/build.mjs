// Bundles the Worker for the offline tests and records the Miniflare options its wrangler config
// implies (compatibility date, vars, the Durable Object binding with SQLite storage), so tests run
// what `wrangler deploy` would ship, configured as wrangler.jsonc says.
//
// Usage: node scripts/build.mjs   (writes dist/index.js, dist/worker-options.json and dist/units.js)

import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const WORKER_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const DIST = join(WORKER_DIR, "dist");
export const BUNDLE = join(DIST, "index.js");
export const OPTIONS = join(DIST, "worker-options.json");
/** The Worker's pure modules (no runtime imports), bundled for unit tests in Node. */
export const UNITS = join(DIST, "units.js");

/** The data files the Worker shares with the Python package, bundled from outside worker/. */
export const SHARED_DATA = join(WORKER_DIR, "..", "src", "edgechat_tui", "core", "data");

function newestSource() {
  const files = [join(WORKER_DIR, "wrangler.jsonc"), join(WORKER_DIR, "test", "units-entry.ts")];
  for (const name of readdirSync(join(WORKER_DIR, "src"), { recursive: true })) files.push(join(WORKER_DIR, "src", name));
  for (const name of readdirSync(SHARED_DATA)) files.push(join(SHARED_DATA, name));
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Whether the outputs are missing or older than a source: building costs seconds, so skip it when not. */
export function buildIsStale() {
  const outputs = [BUNDLE, OPTIONS, UNITS];
  if (!outputs.every((f) => existsSync(f))) return true;
  return Math.min(...outputs.map((f) => statSync(f).mtimeMs)) < newestSource();
}

/** Bundles src/ and writes the worker options; returns their paths. */
export async function buildWorker() {
  await mkdir(DIST, { recursive: true });
  await build({
    entryPoints: [join(WORKER_DIR, "src", "index.ts")],
    outfile: BUNDLE,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*"],
    sourcemap: "inline",
    logLevel: "warning",
  });
  await build({
    entryPoints: [join(WORKER_DIR, "test", "units-entry.ts")],
    outfile: UNITS,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    logLevel: "warning",
  });
  // wrangler is imported only here: it is slow to load and chatty, and tests need only the result.
  const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(WORKER_DIR, "wrangler.jsonc"));
  const options = {
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags ?? [],
    bindings: workerOptions.bindings ?? {},
    durableObjects: workerOptions.durableObjects ?? {},
    aiBinding: workerOptions.ai?.binding ?? null,
  };
  await writeFile(OPTIONS, JSON.stringify(options, null, 2));
  return { bundle: BUNDLE, options: OPTIONS };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWorker();
  console.log(`built ${BUNDLE}`);
}
