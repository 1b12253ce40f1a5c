// Builds every stage from one set of flags, for commands that run several (backfill, demo).
// Providers are created once, up front, so a missing key fails before any work (exit 2).
import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import type { StageName } from '../stages/backfill/sql.js';
import { createEmbedStage } from '../stages/embed.js';
import type { Stage } from '../stages/engine/runner.js';
import { createInsightsStage } from '../stages/insights.js';
import { normalizeStage } from '../stages/normalize.js';
import { createResolveStage } from '../stages/resolve.js';
import { createTimelineStage } from '../stages/timeline.js';
import { createEmbedderFromFlags } from './embed.js';
import { createInsightProviderFromFlags } from './insights.js';
import { parseRegion } from './resolve.js';

export interface StageFlags {
  createContacts?: boolean;
  defaultRegion?: string;
  embedder?: string;
  embeddingModel?: string;
  insightsProvider?: string;
  insightsModel?: string;
  concurrency?: string;
}

export function buildStages(flags: StageFlags, ctx: Pick<Context, 'logger' | 'clock'>): { build: (name: StageName) => Stage; settings: Record<string, unknown> } {
  const concurrency = Number(flags.concurrency ?? '4');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`--concurrency "${flags.concurrency}" must be a whole number between 1 and 64`);
  const defaultRegion = parseRegion(flags.defaultRegion);
  const embedder = createEmbedderFromFlags({ embedder: flags.embedder, model: flags.embeddingModel }, { logger: ctx.logger, modelFlag: '--embedding-model' });
  const insights = createInsightProviderFromFlags({ insightsProvider: flags.insightsProvider, model: flags.insightsModel }, { logger: ctx.logger, clock: ctx.clock, modelFlag: '--insights-model' });
  const createContacts = flags.createContacts === true;
  const build = (name: StageName): Stage => {
    switch (name) {
      case 'normalize':
        return normalizeStage;
      case 'resolve':
        return createResolveStage({ createContacts, ...(defaultRegion ? { defaultRegion } : {}) });
      case 'embed':
        return createEmbedStage({ embedder, concurrency, logger: ctx.logger });
      case 'insights':
        return createInsightsStage({ provider: insights, concurrency, logger: ctx.logger });
      case 'timeline':
        return createTimelineStage();
    }
  };
  return {
    build,
    settings: { createContacts: createContacts || undefined, defaultRegion, embedder: `${embedder.name}:${embedder.model}`, insights: `${insights.name}:${insights.model}` },
  };
}
