// Builds the pipeline's stages from values (SPEC §5-§9): the commands that run several stages
// (backfill, demo) choose providers and settings once and get each stage by name here.
import type { Clock } from '../clock.js';
import type { Embedder } from '../embed/embedder.js';
import type { BatchApi } from '../embed/openai-batch.js';
import type { InsightProvider } from '../insights/provider.js';
import type { Logger } from '../logger.js';
import { withBatches } from './embed/batch.js';
import { createEmbedStage } from './embed/index.js';
import type { Stage } from './engine/runner.js';
import { createInsightsStage } from './insights.js';
import type { StageName } from './names.js';
import { normalizeStage } from './normalize.js';
import { createResolveStage } from './resolve.js';
import { createTimelineStage } from './timeline.js';

export interface StageSettings {
  createContacts: boolean;
  /** ISO 3166-1 alpha-2 region for national-format phone numbers. */
  defaultRegion: string | undefined;
  embedder: Embedder;
  insights: InsightProvider;
  /** Provider requests in flight (embed, insights). */
  concurrency: number;
  /** Said when the embed stage is built to run (why this embedder), if anything. */
  embedderNotice?: string | undefined;
  /** The embedder's Batch API, when it has one: embed collects the batches `embed --via batch` submitted. */
  embedBatches?: BatchApi | undefined;
}

export interface StageDeps {
  logger: Logger;
  clock: Clock;
}

/** What the ledger keeps of the settings: enough to tell two backfills apart. */
export function describeSettings(s: StageSettings): Record<string, unknown> {
  return {
    createContacts: s.createContacts || undefined,
    defaultRegion: s.defaultRegion,
    embedder: `${s.embedder.name}:${s.embedder.model}`,
    insights: `${s.insights.name}:${s.insights.model}`,
  };
}

export function buildStage(name: StageName, s: StageSettings, deps: StageDeps): Stage {
  switch (name) {
    case 'normalize':
      return normalizeStage;
    case 'resolve':
      return createResolveStage({
        createContacts: s.createContacts,
        logger: deps.logger,
        ...(s.defaultRegion ? { defaultRegion: s.defaultRegion } : {}),
      });
    case 'embed': {
      if (s.embedderNotice) deps.logger.info(s.embedderNotice);
      const stage = createEmbedStage({ embedder: s.embedder, concurrency: s.concurrency, logger: deps.logger });
      return s.embedBatches ? withBatches(stage, { embedder: s.embedder, api: s.embedBatches, logger: deps.logger, submit: false }) : stage;
    }
    case 'insights':
      return createInsightsStage({ provider: s.insights, concurrency: s.concurrency, logger: deps.logger });
    case 'timeline':
      return createTimelineStage();
  }
}
