// The insights a provider hands back (SPEC §8), as zod schemas. Two views of one shape:
// - `insightsWire` is what the model is asked for (the response_format's JSON Schema). It keeps to
//   the JSON Schema subset strict structured outputs accept: every field required (score is
//   nullable, not optional) and no string-length keywords.
// - `insightsOutput` is what we accept: the same shape plus the limits the API does not enforce.
//   Whatever a provider returns goes through it before anything is written.
import { createHash } from 'node:crypto';
import { z } from 'zod';

const INSIGHT_KINDS = ['summary', 'next_step', 'score', 'risk', 'opportunity'] as const;
const insightKind = z.enum(INSIGHT_KINDS);

export const TITLE_MAX = 120;
const BODY_MAX = 2_000;
const INSIGHTS_MAX = 8;

export const insightsWire = z.object({
  insights: z.array(
    z.object({
      kind: insightKind,
      title: z
        .string()
        .describe(
          `at most ${TITLE_MAX} characters, specific to this contact (insights with the same kind and title count as the same insight)`,
        ),
      body: z.string().describe('one to three plain sentences'),
      score: z.number().min(0).max(100).nullable().describe('0-100 for kind "score", otherwise null'),
    }),
  ),
});

const insightSchema = z
  .object({
    kind: insightKind,
    title: z.string().trim().min(1).max(TITLE_MAX),
    body: z.string().trim().min(1).max(BODY_MAX),
    score: z.number().min(0).max(100).nullable().optional(),
  })
  .superRefine((value, ctx) => {
    if (value.kind === 'score' && (value.score === null || value.score === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['score'], message: 'an insight of kind "score" needs a score between 0 and 100' });
    }
  });

export const insightsOutput = z.object({ insights: z.array(insightSchema).max(INSIGHTS_MAX) });

export type Insight = z.infer<typeof insightSchema>;

/** One validation problem, with its path written the way an operator reads it: `insights[0].title`. */
export interface InsightIssue {
  path: string;
  message: string;
}

export function issuesOf(error: z.ZodError): InsightIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.reduce<string>(
      (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
      '',
    ),
    message: issue.message,
  }));
}

/**
 * The fingerprint the database derives (SPEC §3.2, public.ai_insight_fingerprint): SHA-256 hex of
 * kind|subject_type|subject_id|model|title, nulls as empty strings. The trigger is the authority;
 * this copy is for reports and tests.
 */
export function insightFingerprint(kind: string, subjectType: string, subjectId: string, model: string, title: string): string {
  return createHash('sha256').update([kind, subjectType, subjectId.toLowerCase(), model, title].join('|'), 'utf8').digest('hex');
}
