// Decoded JSON as both protocols see it: one object type, one guard for "a non-array object",
// and one way to turn anything thrown into a message.

export type JsonObject = { [k: string]: unknown };

export const isJsonObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

export const asJsonObject = (v: unknown): JsonObject | undefined => (isJsonObject(v) ? v : undefined);

/** The message of anything thrown: an Error's message, else its text. */
export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));
