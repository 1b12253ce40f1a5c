// The Gmail API `users.messages` resource as `messages.get?format=full` returns it.
// https://developers.google.com/gmail/api/reference/rest/v1/users.messages
import { z } from 'zod';

// Node decodes both base64 alphabets; anything else (spaces, `$`) means a corrupted export,
// which would otherwise decode silently into garbage.
const base64url = z.string().regex(/^[A-Za-z0-9_\-+/]*={0,2}$/, 'is not base64url data');

const MS_MESSAGE = 'expected milliseconds since the epoch as a string of digits';

const headerSchema = z.object({ name: z.string(), value: z.string() });

const partBodySchema = z.object({
  size: z.number().int().nonnegative().optional(),
  data: base64url.optional(),
  attachmentId: z.string().optional(),
});

export interface MessagePart {
  partId?: string | undefined;
  mimeType?: string | undefined;
  filename?: string | undefined;
  headers?: z.output<typeof headerSchema>[] | undefined;
  body?: z.output<typeof partBodySchema> | undefined;
  parts?: MessagePart[] | undefined;
}

const partFields = {
  partId: z.string().optional(),
  mimeType: z.string().optional(),
  filename: z.string().optional(),
  headers: z.array(headerSchema).optional(),
  body: partBodySchema.optional(),
};

/** Any depth, through zod's recursive schemas. */
const partSchema: z.ZodType<MessagePart> = z.object({
  ...partFields,
  get parts() {
    return z.array(partSchema).optional();
  },
});

// zod guards recursive schemas against reference cycles with per-parse bookkeeping that costs
// a tenth of a Gmail normalize, and a tree counts as recursive if any level is. So the levels
// real mail uses are unrolled, and deeper parts are checked by the recursive schema from a
// refinement, which keeps the recursion out of the common path.
const deepPartsSchema = z.array(partSchema);
const deepParts = z
  .array(z.unknown())
  .superRefine((parts, ctx) => {
    const r = deepPartsSchema.safeParse(parts, { reportInput: true });
    // Re-raised as they are (code, expected, input), so the messages read like any other level's.
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
  })
  .transform((parts) => parts as MessagePart[]);

function unrolled(depth: number): z.ZodType<MessagePart> {
  return z.object({ ...partFields, parts: (depth === 0 ? deepParts : z.array(unrolled(depth - 1))).optional() });
}

const rootPartSchema = unrolled(10);

export const messageSchema = z.object({
  id: z.string().min(1),
  threadId: z.string().optional(),
  labelIds: z.array(z.string()).optional(),
  snippet: z.string().optional(),
  historyId: z.string().optional(),
  // int64 as a string in the API; a number from exporters that converted it.
  internalDate: z.union([z.string().regex(/^[0-9]+$/, MS_MESSAGE), z.number().int()], { error: MS_MESSAGE }),
  sizeEstimate: z.number().int().optional(),
  payload: rootPartSchema,
});

export type GmailMessage = z.output<typeof messageSchema>;
