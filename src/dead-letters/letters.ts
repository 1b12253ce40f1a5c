// What a dead letter is, per stage (SPEC §12): the row's columns and the shape of its `context`,
// as one zod discriminated union, so every writer stores the same shapes and the `errors` and
// `trace` commands can read them back typed. `provider` is always the data source (gmail,
// twilio, …); the model vendor of embed and insights is in the context.
import { z } from 'zod';

const issue = z.object({ path: z.string(), message: z.string() });

const contextSchemas = {
  import: z.object({
    file: z.string(),
    line: z.number().int(),
    batch_id: z.string().nullable(),
    /** What was wrong: not JSON, nested too deep, too large, not closed, invalid, its id, its time, a conflict, refused by the database. */
    kind: z.enum(['not_json', 'too_deep', 'too_large', 'unclosed', 'validation', 'id', 'time', 'conflict', 'database']).optional(),
    source_id: z.string().optional(),
    issues: z.array(issue).optional(),
    sqlstate: z.string().optional(),
    /** The record itself (its text capped at 64 KiB), so it can be shown, exported and retried. */
    record: z
      .object({
        text: z.string(),
        bytes: z.number().int(),
        sha256: z.string(),
        truncated: z.boolean(),
      })
      .optional(),
  }),
  normalize: z.object({
    raw_event_id: z.string(),
    source_id: z.string().nullable(),
    issues: z.array(issue),
    /** The error's class when it was not a validation problem (`database`, a bug's class). */
    kind: z.string().optional(),
    /** The item of a payload holding several (a message of a webhook body) this letter is about. */
    item: z.string().optional(),
    /** The SQLSTATE of a row the database refused. */
    sqlstate: z.string().optional(),
  }),
  embed: z.object({
    interaction_id: z.string(),
    chunk_index: z.number().int(),
    content_hash: z.string(),
    tokens: z.number().int(),
    embedder: z.string(),
    model: z.string(),
    provider_error: z.object({
      message: z.string(),
      status: z.number().optional(),
      code: z.string().nullable().optional(),
      param: z.string().nullable().optional(),
    }),
  }),
  insights: z.object({
    contact_id: z.string(),
    reason: z.string(),
    issues: z.array(issue),
    raw_response_excerpt: z.string().nullable(),
    insights_provider: z.string(),
    model: z.string(),
  }),
  /** A legacy `embeddings.embedding` text the column swap could not copy (SPEC §10). */
  swap: z.object({
    embedding_id: z.string(),
    owner_type: z.string().nullable(),
    owner_id: z.string().nullable(),
    kind: z.enum(['wrong_dimension', 'malformed', 'non_finite']),
    /** How many numbers the value holds, for a wrong dimension. */
    dimensions: z.number().int().nullable(),
    /** The value's length and its first characters: enough to recognise it, not the whole 20 kB. */
    length: z.number().int(),
    excerpt: z.string(),
  }),
} as const;

const common = {
  /** The raw event it is about; null when there is none (an import record, a contact). */
  rawEventId: z.string().nullable(),
  userId: z.string(),
  /** The data source (gmail, twilio, …); null when the item has none (a contact). */
  provider: z.string().nullable(),
  error: z.string(),
};

export const deadLetterSchema = z.discriminatedUnion('stage', [
  z.object({ stage: z.literal('import'), ...common, context: contextSchemas.import }),
  z.object({ stage: z.literal('normalize'), ...common, context: contextSchemas.normalize }),
  z.object({ stage: z.literal('embed'), ...common, context: contextSchemas.embed }),
  z.object({ stage: z.literal('insights'), ...common, context: contextSchemas.insights }),
  z.object({ stage: z.literal('swap'), ...common, context: contextSchemas.swap }),
]);

export type DeadLetter = z.infer<typeof deadLetterSchema>;
export type DeadLetterOf<S extends DeadLetter['stage']> = Extract<DeadLetter, { stage: S }>;
