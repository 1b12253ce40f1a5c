// The manifest of an archive batch: written last, after every part, so a manifest's presence
// means its parts were all written; it lists each part's rows, compressed bytes and SHA-256, the
// id range, the cutoff and the filter, and the tool's version. Read back through zod.
import { z } from 'zod';

export const MANIFEST_FORMAT = 'omni-ingest.raw_events-archive/1';
export const MANIFEST_NAME = 'manifest.json';

const partSchema = z.object({
  // Written before parts carried their attempt: part-00001.ndjson.gz.
  name: z.string().regex(/^part-\d{5}(-[0-9a-f]{8})?\.ndjson\.gz$/),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
});
export type PartEntry = z.infer<typeof partSchema>;

const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  tool: z.object({ name: z.literal('omni-ingest'), version: z.string() }),
  table: z.literal('public.raw_events'),
  batch_id: z.string(),
  created_at: z.string(),
  cutoff: z.string(),
  filter: z.object({ user_id: z.string().nullable(), provider: z.string().nullable() }),
  id_range: z.object({ lo: z.string().nullable(), hi: z.string().nullable() }),
  rows: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  encoding: z.literal('gzip ndjson: one JSON object per line, to_jsonb of the row, every column'),
  parts: z.array(partSchema),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const MANIFEST_ENCODING = 'gzip ndjson: one JSON object per line, to_jsonb of the row, every column' as const;

/** The manifest's text, or a sentence saying why it is not one. */
export function parseManifest(text: string): Manifest | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return `not JSON (${err instanceof Error ? err.message : String(err)})`;
  }
  const parsed = manifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return `not an archive manifest (${issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'invalid'})`;
}

/**
 * The key of a part of a batch, by its number (1-based) and the write that made it (8 hex
 * digits, new for each attempt at writing the batch). A writer that stalled past its lease and
 * wakes after another process took the batch over, wrote it and deleted its rows, then writes
 * only names of its own: it cannot replace a part the other's manifest lists with one read
 * after the delete.
 */
export const partName = (n: number, attempt: string): string => `part-${String(n).padStart(5, '0')}-${attempt}.ndjson.gz`;

/** Whether a key's last segment is a part's name (of any attempt, or from before attempts). */
export const isPartKey = (key: string): boolean => /(^|\/)part-\d{5}(-[0-9a-f]{8})?\.ndjson\.gz$/.test(key);
