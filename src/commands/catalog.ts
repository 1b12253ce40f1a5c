// Every command's name and one-line description, and how to load it. `--help` and the
// unknown-command suggestions need only this; a command's module (and everything it imports:
// providers, tokenizer, SDKs) is loaded only when that command runs, so the binary starts fast.
// cli.ts creates each Command with its name and description and hands it to `register`.
import type { Command } from 'commander';
import type { RunState } from './run.js';

type Register = (cmd: Command, state: RunState) => void;

export interface CatalogEntry {
  name: string;
  description: string;
  load: () => Promise<Register>;
}

export const CATALOG: readonly CatalogEntry[] = [
  {
    name: 'migrate',
    description: 'apply pending migrations, each in one transaction, recorded with its checksum',
    load: async () => (await import('./migrate.js')).registerMigrate,
  },
  {
    name: 'verify',
    description: 'check the live database against every promise of the hardening migration (exit 3 on any failure)',
    load: async () => (await import('./verify.js')).registerVerify,
  },
  {
    name: 'doctor',
    description: 'check connectivity, server and pgvector versions, migrations and row level security (exit 3 on problems)',
    load: async () => (await import('./doctor.js')).registerDoctor,
  },
  {
    name: 'import',
    description: 'load provider-native payloads (NDJSON or a JSON array) into raw_events, idempotently',
    load: async () => (await import('./import.js')).registerImport,
  },
  {
    name: 'normalize',
    description: 'raw events → interactions, each event exactly once; failures go to raw_event_errors',
    load: async () => (await import('./normalize.js')).registerNormalize,
  },
  {
    name: 'resolve',
    description: 'link interactions to contacts by their counterpart identities (email, phone, Instagram id)',
    load: async () => (await import('./resolve.js')).registerResolve,
  },
  {
    name: 'embed',
    description: 'chunk and embed queued interactions into embeddings (vector(1536)); rejected inputs go to raw_event_errors',
    load: async () => (await import('./embed.js')).registerEmbed,
  },
  {
    name: 'insights',
    description: 'AI insights (summary, next step, score) per contact with new interactions',
    load: async () => (await import('./insights.js')).registerInsights,
  },
  {
    name: 'timeline',
    description: 'write contact timeline entries for resolved interactions and contact insights',
    load: async () => (await import('./timeline.js')).registerTimeline,
  },
  {
    name: 'backfill',
    description: 'run every stage in order over a range: normalize, resolve, embed, insights, timeline',
    load: async () => (await import('./backfill.js')).registerBackfill,
  },
  {
    name: 'embeddings',
    description: 'the embedding column swap: status, backfill (--reembed), verify, swap (--rollback), index',
    load: async () => (await import('./embeddings.js')).registerEmbeddings,
  },
  {
    name: 'search',
    description: 'the interactions nearest to a text, by embedding (through the HNSW index when there is one)',
    load: async () => (await import('./search.js')).registerSearch,
  },
  {
    name: 'demo',
    description: 'the whole pipeline on the bundled fixtures: migrate, import, backfill with offline providers, stats, one semantic search',
    load: async () => (await import('./demo.js')).registerDemo,
  },
  {
    name: 'errors',
    description: 'dead letters: list, group, show, retry, discard, export and purge them',
    load: async () => (await import('./errors.js')).registerErrors,
  },
  {
    name: 'trace',
    description: "one event's path through every table: raw event, interaction, contact, chunks, insights, timeline, errors, runs",
    load: async () => (await import('./trace.js')).registerTrace,
  },
  {
    name: 'stats',
    description:
      "the design document's debug figures: failures by provider/stage (24 h), timeline per day, embedding coverage, jobs, pending work",
    load: async () => (await import('./stats.js')).registerStats,
  },
  {
    name: 'runs',
    description: 'the run ledger: every batch command run, its counts and checkpoint',
    load: async () => (await import('./runs.js')).registerRuns,
  },
  {
    name: 'archive',
    description: 'move raw events older than the hot window to file:// or s3:// (verified before delete); restore, verify, list',
    load: async () => (await import('./archive.js')).registerArchive,
  },
  {
    name: 'purge',
    description: 'delete data past its retention',
    load: async () => (await import('./purge.js')).registerPurge,
  },
];
