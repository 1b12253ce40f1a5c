// The pipeline's stages, in the order a backfill runs them.
export const STAGE_ORDER = ['normalize', 'resolve', 'embed', 'insights', 'timeline'] as const;

export type StageName = (typeof STAGE_ORDER)[number];
