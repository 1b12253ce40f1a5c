// `omni-ingest embeddings status | backfill | verify | swap [--rollback] | index` (SPEC §10): the
// embedding column swap. The logic is in src/embeddings/, loaded only when a subcommand runs.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { Db } from '../db/connect.js';
import type { VerifyReport } from '../embeddings/verify.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import type { ProgressBar } from '../stages/engine/progress.js';
import { addRangeOptions, withRunControls } from './batch-options.js';
import { addEmbedderOptions, type EmbedderFlags, embedderFromFlags, noteDefaultEmbedder } from './embedder-options.js';
import { renderBackfill, renderIndex, renderReembed, renderStatus, renderSwap, renderVerify } from './embeddings-render.js';
import {
  concurrencyFlag,
  lockTimeoutFlag,
  memorySizeFlag,
  parseFlags,
  parseRange,
  type RangeFlags,
  wholeNumber,
  workersFlag,
} from './flags.js';
import { action, type RunState } from './run.js';

interface LockFlags {
  lockTimeout?: string;
  lockAttempts?: string;
}

interface BackfillFlags extends RangeFlags, EmbedderFlags, LockFlags {
  workers?: string;
  reembed?: boolean;
  concurrency?: string;
}

interface VerifyFlags {
  batchSize?: string;
  workers?: string;
}

interface SwapFlags extends LockFlags, VerifyFlags {
  rollback?: boolean;
}

interface IndexFlags {
  m?: string;
  efConstruction?: string;
  maintenanceWorkMem?: string;
  rebuild?: boolean;
}

const DEFAULT_LOCK_TIMEOUT_MS = 500;
const WORKERS_HELP = 'key ranges read at once (real server only; default: 2)';
const DEFAULT_LOCK_ATTEMPTS = 10;

/** The database, with this release's swap objects in it (else: run migrate, exit 2). */
async function swapDb(ctx: Context): Promise<Db> {
  const db = await ctx.db();
  const { hasSwapSchema } = await import('../embeddings/swap-sql.js');
  if (!(await hasSwapSchema(db)))
    throw new ConfigError('this database lacks the embedding swap migration (202611301100_embedding_swap)', {
      hint: 'run `omni-ingest migrate`',
    });
  return db;
}

function lockOptions(flags: LockFlags): { lockTimeoutMs: number; lockAttempts: number } {
  const f = parseFlags({ lockTimeout: lockTimeoutFlag, lockAttempts: wholeNumber(1, 100) }, flags);
  return { lockTimeoutMs: f.lockTimeout ?? DEFAULT_LOCK_TIMEOUT_MS, lockAttempts: f.lockAttempts ?? DEFAULT_LOCK_ATTEMPTS };
}

function addLockOptions(cmd: Command): Command {
  return cmd
    .option('--lock-timeout <duration>', `how long one attempt waits for its lock on embeddings (default: ${DEFAULT_LOCK_TIMEOUT_MS}ms)`)
    .option('--lock-attempts <n>', `attempts, with a growing pause between them, before exit 75 (default: ${DEFAULT_LOCK_ATTEMPTS})`);
}

async function runStatus(ctx: Context): Promise<number> {
  const db = await swapDb(ctx);
  const { embeddingsStatus } = await import('../embeddings/status.js');
  const status = await embeddingsStatus(db);
  ctx.out.result(status, () => renderStatus(status));
  return ExitCode.ok;
}

async function runBackfill(ctx: Context, flags: BackfillFlags): Promise<number> {
  const range = parseRange(flags, ctx.clock);
  const f = parseFlags({ workers: workersFlag, concurrency: concurrencyFlag }, flags);
  const lock = lockOptions(flags);
  const embedderFlags = [flags.embedder, flags.model, flags.dimensions, flags.concurrency];
  if (!flags.reembed && embedderFlags.some((v) => v !== undefined))
    throw new UsageError('--embedder, --model, --dimensions and --concurrency apply only with --reembed');
  const embedder = flags.reembed ? embedderFromFlags(ctx, flags) : undefined;
  const db = await swapDb(ctx);
  if (embedder) noteDefaultEmbedder(ctx, flags, embedder);
  const { backfillAndReembed } = await import('../embeddings/backfill-run.js');
  const doc = await withRunControls(ctx, ({ progress, signal }) =>
    backfillAndReembed({
      db,
      clock: ctx.clock,
      logger: ctx.logger,
      range,
      // As embed: on the embedded database only an explicit --workers is noted as ignored.
      workers: f.workers ?? (db.kind === 'server' ? 2 : 1),
      signal,
      progress,
      ...lock,
      embedder,
      concurrency: f.concurrency ?? 4,
    }),
  );
  const e = embedder && { name: embedder.name, model: embedder.model, lexical: embedder.lexical };
  ctx.out.result({ ...doc, embedder: e ?? null }, () => [
    ...renderBackfill(doc.backfill),
    ...(doc.reembed && e ? renderReembed(doc.reembed, e) : []),
    ...(doc.lettersResolved > 0 ? [`${doc.lettersResolved} swap dead letter(s) resolved: their rows have a vector now, or are gone`] : []),
  ]);
  return ExitCode.ok;
}

interface VerifySettings {
  batchSize: number;
  workers: number;
}

function verifySettings(ctx: Context, flags: VerifyFlags): VerifySettings {
  const { batchSize } = parseRange({ batchSize: flags.batchSize }, ctx.clock);
  return { batchSize, workers: parseFlags({ workers: workersFlag }, flags).workers ?? 2 };
}

/** `embeddings verify` over `db`, its module loaded, ready to run with a progress bar. */
async function verifier(db: Db, v: VerifySettings, signal: AbortSignal): Promise<(bar: ProgressBar) => Promise<VerifyReport>> {
  const { verifyEmbeddings } = await import('../embeddings/verify.js');
  return (bar) => verifyEmbeddings(db, { ...v, bar, signal });
}

async function runVerify(ctx: Context, flags: VerifyFlags): Promise<number> {
  const v = verifySettings(ctx, flags);
  const db = await swapDb(ctx);
  const report = await withRunControls(ctx, async ({ progress, signal }) => (await verifier(db, v, signal))(progress.start('verify', 0)));
  ctx.out.result(report, () => renderVerify(report, ctx.out.style));
  return report.ok ? ExitCode.ok : ExitCode.checkFailed;
}

async function runSwap(ctx: Context, flags: SwapFlags): Promise<number> {
  const v = verifySettings(ctx, flags);
  const lock = lockOptions(flags);
  const db = await swapDb(ctx);
  const { swapColumns } = await import('../embeddings/swap.js');
  const result = await withRunControls(ctx, async ({ progress, signal }) => {
    const verify = await verifier(db, v, signal);
    return swapColumns(db, {
      rollback: flags.rollback === true,
      ...lock,
      logger: ctx.logger,
      signal,
      verify: () => verify(progress.start('verify', 0)),
    });
  });
  ctx.out.result(result, () => renderSwap(result, ctx.out.style));
  return result.action === 'refused' ? ExitCode.checkFailed : ExitCode.ok;
}

async function runIndex(ctx: Context, flags: IndexFlags): Promise<number> {
  const f = parseFlags({ m: wholeNumber(2, 100), efConstruction: wholeNumber(4, 1000), maintenanceWorkMem: memorySizeFlag }, flags);
  const m = f.m ?? 16;
  const efConstruction = f.efConstruction ?? 64;
  if (efConstruction < 2 * m)
    throw new UsageError(`--ef-construction (${efConstruction}) must be at least twice --m (${m}): pgvector's rule`);
  const db = await swapDb(ctx);
  const { buildIndex } = await import('../embeddings/hnsw.js');
  const result = await withRunControls(ctx, ({ progress }) =>
    buildIndex(db, {
      m,
      efConstruction,
      maintenanceWorkMem: f.maintenanceWorkMem ?? null,
      rebuild: flags.rebuild === true,
      logger: ctx.logger,
      bar: progress.start('index', 0),
    }),
  );
  ctx.out.result(result, () => renderIndex(result));
  return ExitCode.ok;
}

export function registerEmbeddings(cmd: Command, state: RunState): void {
  cmd.addHelpText(
    'after',
    `
The order of a swap, each step safe to stop and run again:
  embeddings status             where it stands, what to run next
  embeddings backfill           sync trigger, then copy every valid legacy value (--reembed for the rest)
  embeddings verify             exit 3 unless every row has its vector, equal to its legacy value
  embeddings swap               embedding becomes the vector column (--rollback goes back)
  embeddings index              the HNSW cosine index search uses`,
  );

  cmd
    .command('status')
    .description('rows by legacy state, rows with a vector, which column is the vector, trigger, index, next step')
    .addHelpText('after', '\nExamples:\n  omni-ingest embeddings status\n  omni-ingest embeddings status --json')
    .action(action(state, (ctx) => runStatus(ctx)));

  const backfill = cmd
    .command('backfill')
    .description('copy every valid legacy embedding text into the vector column, in resumable keyset batches')
    .option('--reembed', 'then give the rows left without a vector the embedding of their interaction text')
    .option('--workers <n>', 'batches at once in this process (real server only; default: 2)');
  addEmbedderOptions(backfill).option('--concurrency <n>', '--reembed: provider requests in flight at once (default: 4)');
  addLockOptions(addRangeOptions(backfill, ['batchSize', 'limit', 'timeBudget', 'dryRun']))
    .addHelpText(
      'after',
      `
First installs a trigger so that legacy values an older application writes from then on fill
the vector column as they are written (a value it cannot parse is left null, and reported).
Then one pass over the table in keyset ranges: each batch is one short transaction that copies
the valid values of its rows in one UPDATE, records the invalid ones (malformed, another
dimension, NaN/Infinity) as dead letters (stage swap) once each, and moves its range's cursor
and the run ledger with the data. Several processes share the ranges (FOR UPDATE SKIP LOCKED);
a killed run loses nothing and a re-run continues. --reembed sends the interactions of the rows
still without a vector to the embedder, chunked as embed does (--dry-run: tokens and cost).

Examples:
  omni-ingest embeddings backfill --dry-run
  omni-ingest embeddings backfill --time-budget 10m --batch-size 500
  omni-ingest embeddings backfill --reembed --embedder openai --dry-run --json
  omni-ingest embeddings backfill --reembed`,
    )
    .action(action<BackfillFlags>(state, (ctx, flags) => runBackfill(ctx, flags)));

  const verify = cmd
    .command('verify')
    .description('exit 3 unless every row has a 1536-d vector equal to its valid legacy value (1e-6)')
    .option('--workers <n>', WORKERS_HELP);
  addRangeOptions(verify, ['batchSize'])
    .addHelpText(
      'after',
      `
Reads every row, in keyset batches of short statements (--workers key ranges at once on a
server). One line per check: how many rows fail it and three of them. Works before and after
the swap.

Examples:
  omni-ingest embeddings verify
  omni-ingest embeddings verify --json`,
    )
    .action(action<VerifyFlags>(state, (ctx, flags) => runVerify(ctx, flags)));

  const swap = cmd
    .command('swap')
    .description('make embedding the vector(1536) column (legacy text kept as embedding_legacy); --rollback restores')
    .option('--rollback', 'restore the previous names (embedding_v the vector, embedding the text)')
    .option('--workers <n>', `its verify: ${WORKERS_HELP}`);
  addLockOptions(addRangeOptions(swap, ['batchSize']))
    .addHelpText(
      'after',
      `
Refuses (exit 3) unless embeddings verify passes. Then one short transaction takes the table's
lock with --lock-timeout (so readers queued behind it wait no longer than that), renames the
columns and turns the sync trigger around: vectors written from then on are mirrored into
embedding_legacy, so a rollback loses nothing. A busy table is retried with a growing pause;
still busy after --lock-attempts: exit 75, nothing changed. A second swap at the same time waits
and then finds nothing to do. Everything in this tool follows the columns without a flag.

Examples:
  omni-ingest embeddings swap
  omni-ingest embeddings swap --lock-timeout 200ms --lock-attempts 30
  omni-ingest embeddings swap --rollback`,
    )
    .action(action<SwapFlags>(state, (ctx, flags) => runSwap(ctx, flags)));

  cmd
    .command('index')
    .description('build the HNSW cosine index (CREATE INDEX CONCURRENTLY on a server), repairing an INVALID one')
    .option('--m <n>', 'HNSW connections per node (default: 16)')
    .option('--ef-construction <n>', 'HNSW candidate list while building (default: 64; at least 2 × m)')
    .option('--maintenance-work-mem <size>', "memory for this build, e.g. 1GB (default: the server's setting)")
    .option('--rebuild', 'build it again even when an index with these parameters is there')
    .addHelpText(
      'after',
      `
On a server the index is built CONCURRENTLY (writes go on), on a connection of its own, with
progress from pg_stat_progress_create_index. A build that was killed leaves an INVALID index:
it is dropped and built again. A rebuild builds the new index beside the old one, then drops
the old; one killed after its build leaves the new index finished: the next run takes it over
when it has the parameters asked for, else drops it and builds again. The embedded database has
one connection: there it is built without CONCURRENTLY.

Examples:
  omni-ingest embeddings index
  omni-ingest embeddings index --m 24 --ef-construction 100 --maintenance-work-mem 2GB --rebuild`,
    )
    .action(action<IndexFlags>(state, (ctx, flags) => runIndex(ctx, flags)));
}
