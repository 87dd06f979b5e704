// The Worker's pure modules, gathered for the unit tests (bundled to dist/units.js by scripts/build.mjs).
export * from "../src/context";
export * from "../src/model";
export * from "../src/userid";
export * from "../src/errors";
export { readSettings, DEFAULT_MODEL, FALLBACK_CONTEXT_WINDOW } from "../src/config";
export { TurnQueue } from "../src/turnqueue";
export { routePath } from "../src/routing";
export * from "../src/tokens";
export * from "../src/access";
export * from "../src/limits";
export { readServiceConfig, scopedUserId } from "../src/identity";
