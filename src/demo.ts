// The main job on a fresh machine (`omni-ingest demo`, `npm start`): migrate the database, load
// the bundled fixtures plus generated events for a few users, run the backfill with the offline
// providers, then show the figures and one semantic search. Re-running it changes nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Context } from './context.js';
import type { Db } from './db/connect.js';
import { foreignContent } from './demo-sql.js';
import { UsageError } from './errors.js';
import { searchInteractions, type SearchResult } from './embeddings/search.js';
import { createLocalEmbedder } from './embed/local.js';
import { createHeuristicInsightProvider } from './insights/heuristic.js';
import { generateEvents, type GeneratedProvider } from './generate/generator.js';
import { loadMigrationFiles } from './migrate/files.js';
import { migrate } from './migrate/migrator.js';
import { migrationsDir, packageRoot } from './paths.js';
import { getProvider, providerNames } from './providers/index.js';
import { runBackfill, type BackfillSummary } from './stages/backfill/backfill.js';
import type { Progress } from './stages/engine/progress.js';
import { DEFAULT_BATCH_SIZE, makeRange } from './stages/engine/range.js';
import { importFiles } from './stages/import/import.js';
import { STAGE_ORDER } from './stages/names.js';
import { buildStage, describeSettings, type StageSettings } from './stages/registry.js';
import { readStats, type Stats } from './stats/sql.js';

/** The user the bundled fixtures belong to, and two more with generated events. */
const DEMO_USERS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];

export interface DemoOptions {
  /** Generated events per provider for each extra user. */
  generated: number;
  /** Write into a server database that holds data other than the demo's. */
  force: boolean;
  query: string;
  progress: Progress;
}

export interface DemoResult {
  database: string;
  imported: { file: string; provider: string; user: string; inserted: number; duplicates: number; invalid: number }[];
  backfill: BackfillSummary;
  stats: Stats;
  /** The same as `omni-ingest search` gives, with the offline embedder. */
  search: SearchResult;
}

function generatedFiles(dir: string, count: number): { file: string; provider: GeneratedProvider; user: string }[] {
  const out: { file: string; provider: GeneratedProvider; user: string }[] = [];
  DEMO_USERS.slice(1).forEach((user, u) => {
    for (const provider of providerNames as GeneratedProvider[]) {
      const file = path.join(dir, `${provider}-${u + 2}.ndjson`);
      const lines: string[] = [];
      for (const payload of generateEvents(provider, count, { seed: 1000 + u, userId: user, start: '2025-09-01T08:00:00Z' }))
        lines.push(JSON.stringify(payload));
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      out.push({ file, provider, user });
    }
  });
  return out;
}

async function importAll(ctx: Context, db: Db, count: number): Promise<DemoResult['imported']> {
  const bundled = providerNames.map((provider) => ({
    file: path.join(packageRoot, 'fixtures', 'demo', `${provider}.ndjson`),
    provider,
    user: DEMO_USERS[0]!,
  }));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-demo-'));
  try {
    const imported: DemoResult['imported'] = [];
    for (const { file, provider, user } of [...bundled, ...generatedFiles(tmp, count)]) {
      const s = await importFiles({
        db,
        clock: ctx.clock,
        logger: ctx.logger,
        files: [file],
        provider: getProvider(provider),
        userId: user,
        batchSize: DEFAULT_BATCH_SIZE,
        dryRun: false,
      });
      imported.push({
        file: path.basename(file),
        provider,
        user,
        inserted: s.counts.inserted,
        duplicates: s.counts.duplicates,
        invalid: s.counts.invalid,
      });
    }
    return imported;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The demo writes three users' worth of made-up events: on a server it was pointed at by mistake
 * (a production URL left in DATABASE_URL) that would be mixed into real data. The embedded
 * database is the demo's own folder.
 */
async function refuseForeignDatabase(db: Db, force: boolean): Promise<void> {
  if (db.kind !== 'server' || force) return;
  const found = await foreignContent(db, DEMO_USERS);
  const what =
    found.foreignTables.length > 0
      ? `tables omni-ingest did not make (${found.foreignTables.slice(0, 5).join(', ')}${found.foreignTables.length > 5 ? ', …' : ''})`
      : found.otherEvents > 0
        ? `raw events of users other than the demo's (${found.otherEvents >= 1000 ? '1000 or more' : found.otherEvents})`
        : undefined;
  if (what === undefined) return;
  throw new UsageError(`refusing to write the demo data into ${db.target}: it holds ${what}`, {
    hint: 'run the demo on the embedded database (no --database-url), on an empty database, or add --force to write it there anyway',
  });
}

export async function runDemo(ctx: Context, options: DemoOptions): Promise<DemoResult> {
  const db = await ctx.db();
  await refuseForeignDatabase(db, options.force);
  const migrated = await migrate(db, { files: loadMigrationFiles(migrationsDir), logger: ctx.logger });
  if (migrated.applied.length > 0) ctx.logger.info(`migrated: ${migrated.applied.map((a) => a.name).join(', ')}`);
  const imported = await importAll(ctx, db, options.generated);
  ctx.logger.info(
    `imported ${imported.reduce((n, i) => n + i.inserted, 0)} new events (${imported.reduce((n, i) => n + i.duplicates, 0)} already there)`,
  );

  // The offline providers: the demo needs no key and no network.
  const embedder = createLocalEmbedder();
  const settings: StageSettings = {
    createContacts: true,
    defaultRegion: 'US',
    embedder,
    insights: createHeuristicInsightProvider({ clock: ctx.clock }),
    concurrency: 2,
  };
  const backfill = await runBackfill({
    db,
    clock: ctx.clock,
    logger: ctx.logger,
    range: makeRange({ batchSize: 500 }),
    stages: [...STAGE_ORDER],
    reprocess: false,
    build: (name) => buildStage(name, settings, ctx),
    progress: options.progress,
    settings: { ...describeSettings(settings), demo: true },
  });
  const stats = await readStats(db);
  // The bundled fixtures are the hand-written, varied ones: search those.
  const search = await searchInteractions(db, {
    text: options.query,
    limit: 5,
    filters: makeRange({ userId: DEMO_USERS[0] }),
    embedder,
    explain: false,
  });
  return { database: db.target, imported, backfill, stats, search };
}
