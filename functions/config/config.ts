/**
 * The configuration contract: one JSON (or JSON with comments) file, parsed once at the edge with
 * zod and passed down typed. This module is the config's public face; its parts live beside it:
 * schema.ts (the schema and types), parse.ts (reading a file, errors with positions, JSON Schema),
 * secrets.ts (credentials), stream-settings.ts (per-stream defaults), warnings.ts.
 */
export { type ArchiveFormat, WINDOW_LENGTHS_SECONDS } from "../domain/archive.ts";
export { STREAM_NAME_RULE } from "../domain/names.ts";
export * from "./parse.ts";
export * from "./schema.ts";
export * from "./secrets.ts";
export * from "./stream-settings.ts";
export * from "./warnings.ts";
