// `omni-ingest archive --older-than <days> --to <uri>` / `archive restore` / `archive verify` /
// `archive list` (SPEC §11): retention of raw events. The logic is in src/archive/, loaded only
// when a subcommand runs (and the S3 SDK only for an s3:// target).
import type { Command } from 'commander';
import { z } from 'zod';
import type { S3Flags } from '../archive/options.js';
import type { ArchiveTarget } from '../archive/store.js';
import type { Context } from '../context.js';
import type { Db } from '../db/connect.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import { renderDryRun, renderList, renderRestore, renderRestoreAll, renderRun, renderVerify } from './archive-render.js';
import { addRangeOptions, exitCodeOf, withRunControls } from './batch-options.js';
import { durationFlag, nonEmpty, oneOf, parseFlags, uuidFlag, wholeNumber, workersFlag } from './flags.js';
import { action, type RunState } from './run.js';

/** SPEC §11: the hot window is never shorter than this. */
const MIN_DAYS = 90;
const DEFAULT_BATCH_SIZE = 10_000;
const DEFAULT_PART_ROWS = 50_000;
/** A --from that ends so names one manifest; anything else is a target whose manifests are all taken. */
const MANIFEST = 'manifest.json';
const STATES = ['planned', 'written', 'verified', 'deleted', 'restored'] as const;

interface ArchiveFlags extends S3Flags {
  olderThan?: string;
  to?: string;
  user?: string;
  provider?: string;
  batchSize?: string;
  partRows?: string;
  workers?: string;
  timeBudget?: string;
  dryRun?: boolean;
}

interface RestoreFlags extends S3Flags {
  from?: string;
  renormalize?: boolean;
  dryRun?: boolean;
}

interface VerifyFlags extends S3Flags {
  from?: string;
}

interface ListFlags {
  state?: string;
  limit?: string;
}

/** --older-than: whole days, `180` or `180d`. */
const daysFlag = z.string().transform((text, ctx) => {
  const m = /^(\d{1,6})d?$/.exec(text.trim());
  if (!m) {
    ctx.addIssue({ code: 'custom', message: 'must be a whole number of days, such as 180 or 180d' });
    return z.NEVER;
  }
  return Number(m[1]);
});

/** The database, with the archive's tables in it (else: run migrate, exit 2). */
async function archiveDb(ctx: Context): Promise<Db> {
  const db = await ctx.db();
  const { hasArchiveSchema } = await import('../archive/batch-read.js');
  if (!(await hasArchiveSchema(db)))
    throw new ConfigError('this database lacks the archive migration (202611301200_archive)', { hint: 'run `omni-ingest migrate`' });
  return db;
}

async function s3Options(flags: S3Flags) {
  const { resolveS3Options } = await import('../archive/options.js');
  return resolveS3Options(flags);
}

/** Opens targets by URI, each once. */
async function targetOpener(flags: S3Flags): Promise<(uri: string) => Promise<ArchiveTarget>> {
  const s3 = await s3Options(flags);
  const { openTarget } = await import('../archive/target.js');
  const open = new Map<string, Promise<ArchiveTarget>>();
  return (uri) => {
    const known = open.get(uri);
    if (known) return known;
    const opening = openTarget(uri, s3);
    open.set(uri, opening);
    return opening;
  };
}

async function runArchiveCommand(ctx: Context, flags: ArchiveFlags): Promise<number> {
  const f = parseFlags(
    {
      olderThan: daysFlag,
      to: nonEmpty,
      user: uuidFlag,
      provider: nonEmpty,
      batchSize: wholeNumber(1, 100_000),
      partRows: wholeNumber(1, 1_000_000),
      workers: workersFlag,
      timeBudget: durationFlag,
    },
    flags,
  );
  if (f.olderThan === undefined) throw new UsageError('--older-than <days> is required (at least 90)');
  if (f.olderThan < MIN_DAYS)
    throw new UsageError(`--older-than ${f.olderThan} is refused: raw events stay hot at least ${MIN_DAYS} days (SPEC §11)`);
  if (f.to === undefined) throw new UsageError('--to <uri> is required: file://<dir> or s3://<bucket>/<prefix>');
  const { parseTargetUri, canonicalUri } = await import('../archive/target.js');
  const uri = canonicalUri(parseTargetUri(f.to));
  const open = await targetOpener(flags);
  const filter = { cutoff: new Date(ctx.clock.now().getTime() - f.olderThan * 86_400_000), userId: f.user, provider: f.provider };
  const db = await archiveDb(ctx);
  if (flags.dryRun) {
    const { archiveDryRun } = await import('../archive/dry-run.js');
    const result = await archiveDryRun(db, await open(uri), filter);
    ctx.out.result(result, () => renderDryRun(result));
    return ExitCode.ok;
  }
  const target = await open(uri);
  const { runArchive } = await import('../archive/run.js');
  const result = await withRunControls(ctx, ({ progress, signal }) =>
    runArchive({
      db,
      target,
      filter,
      olderThanDays: f.olderThan!,
      batchSize: f.batchSize ?? DEFAULT_BATCH_SIZE,
      partRows: f.partRows ?? DEFAULT_PART_ROWS,
      workers: f.workers ?? 1,
      timeBudgetMs: f.timeBudget,
      clock: ctx.clock,
      signal,
      logger: ctx.logger,
      bar: progress.start('archive', undefined),
      reconnectMs: ctx.config.reconnectForMs,
    }),
  );
  ctx.out.result(result, () => renderRun(result));
  return exitCodeOf(result);
}

async function runRestore(ctx: Context, flags: RestoreFlags): Promise<number> {
  const { from } = parseFlags({ from: nonEmpty }, flags);
  if (from === undefined) throw new UsageError('--from <manifest-uri> is required (`archive list` shows them)');
  const { openObject, openTarget } = await import('../archive/target.js');
  const s3 = await s3Options(flags);
  const o = { renormalize: flags.renormalize === true, dryRun: flags.dryRun === true, logger: ctx.logger };
  if (from.endsWith(`/${MANIFEST}`)) {
    const { target, key } = await openObject(from, s3);
    const { restoreArchive } = await import('../archive/restore.js');
    const result = await restoreArchive({ ...o, db: await archiveDb(ctx), target, key });
    ctx.out.result(result, () => renderRestore(result));
    return restoreExit([result]);
  }
  const target = await openTarget(from, s3);
  const { restoreAll } = await import('../archive/restore-all.js');
  const result = await restoreAll({ ...o, db: await archiveDb(ctx), target });
  ctx.out.result(result, () => renderRestoreAll(result));
  return restoreExit(result.manifests);
}

/** A manifest that failed its check: exit 3; events that could not be put back: exit 1. */
function restoreExit(results: { status: string }[]): number {
  if (results.some((r) => r.status === 'failed')) return ExitCode.checkFailed;
  return results.some((r) => r.status === 'incomplete') ? ExitCode.failed : ExitCode.ok;
}

async function runVerify(ctx: Context, flags: VerifyFlags): Promise<number> {
  const { from } = parseFlags({ from: nonEmpty }, flags);
  if (from !== undefined) (await import('../archive/target.js')).parseTargetUri(from);
  const open = await targetOpener(flags);
  const db = await archiveDb(ctx);
  const { verifyArchives } = await import('../archive/verify.js');
  const report = await verifyArchives({ db, open, from });
  ctx.out.result(report, () => renderVerify(report, ctx.out.style));
  return report.ok ? ExitCode.ok : ExitCode.checkFailed;
}

async function runList(ctx: Context, flags: ListFlags): Promise<number> {
  const f = parseFlags({ state: oneOf(STATES), limit: wholeNumber(1, 100_000) }, flags);
  const db = await archiveDb(ctx);
  const { listBatches } = await import('../archive/batch-read.js');
  const batches = await listBatches(db, f.limit ?? 100, f.state);
  ctx.out.result({ batches }, () => renderList(batches));
  return ExitCode.ok;
}

function addS3Options(cmd: Command): Command {
  return cmd
    .option('--s3-endpoint <url>', 'an S3-compatible endpoint, e.g. http://127.0.0.1:9000 (env AWS_ENDPOINT_URL; default: AWS)')
    .option('--s3-region <region>', 'the bucket region (env AWS_REGION; default: us-east-1)')
    .option('--s3-force-path-style', 'path-style requests (http://host/bucket/key), as MinIO and most S3-compatible servers want');
}

/**
 * The parent's options given to a subcommand (`archive restore --user …`) are refused as unknown:
 * commander parses them as `archive`'s wherever they stand, and the subcommand ignored them
 * (`restore --dry-run` wrote rows). Positional options would need the root to stop parsing at
 * the command name, and its global flags are allowed after it. An option the subcommand has too
 * (--s3-endpoint, restore's own --dry-run) is its own: optsWithGlobals hands it over.
 */
function refuseParentOptions(sub: Command): void {
  const parent = sub.parent!;
  const own = new Set(sub.options.map((o) => o.attributeName()));
  const stray = parent.options.find((o) => parent.getOptionValueSource(o.attributeName()) === 'cli' && !own.has(o.attributeName()));
  if (stray)
    throw new UsageError(`unknown option '${stray.long ?? stray.flags}' for \`archive ${sub.name()}\` (it belongs to \`archive\` itself)`, {
      hint: `run \`omni-ingest archive ${sub.name()} --help\` for usage`,
    });
}

export function registerArchive(cmd: Command, state: RunState): void {
  cmd
    .option('--older-than <days>', `archive raw events that happened more than this many days ago (at least ${MIN_DAYS})`)
    .option('--to <uri>', 'where: file://<dir> or s3://<bucket>/<prefix>')
    .option('--batch-size <n>', `events per archive batch (one manifest each; default: ${DEFAULT_BATCH_SIZE})`)
    .option('--part-rows <n>', `events per part file of a batch (default: ${DEFAULT_PART_ROWS})`)
    .option('--workers <n>', 'batches worked on at once in this process (real server only; default: 1)');
  addS3Options(addRangeOptions(cmd, ['user', 'provider', 'timeBudget', 'dryRun']))
    .addHelpText(
      'after',
      `
Each batch goes planned → written → verified → deleted, every step committed before the next:
its events are written as gzip NDJSON parts (each row exactly as raw_events holds it), then a
manifest (rows, bytes and SHA-256 of each part, id range, cutoff, version); every part is read
back and checked before any row is deleted, and then only the ids read back are deleted, in
short transactions. A run killed at any point loses nothing: the next run continues its
batches. Several processes (machines) share the work through leases in the database. Events
still waiting to be normalized are left hot.

Examples:
  omni-ingest archive --older-than 180 --to file:///var/backups/omni --dry-run
  omni-ingest archive --older-than 180 --to s3://crm-archive/raw-events --time-budget 20m
  omni-ingest archive --older-than 120 --to s3://archive/raw --s3-endpoint http://127.0.0.1:9000 --s3-force-path-style
  omni-ingest archive restore --from s3://crm-archive/raw-events/raw_events/2026-11-30/<batch>/manifest.json
  omni-ingest archive verify
  omni-ingest archive list`,
    )
    .action(action<ArchiveFlags>(state, (ctx, flags) => runArchiveCommand(ctx, flags)));

  const restore = cmd
    .command('restore')
    .description('put archived events back into raw_events, idempotently, after checking every part')
    .option('--from <uri>', 'the manifest of a batch (archive list shows them), or a target: every manifest under it')
    .option('--renormalize', 'queue the restored events for normalize again (default: they are not)')
    .option('--dry-run', 'read and check every part and count what would be put back; write nothing');
  addS3Options(restore)
    .addHelpText(
      'after',
      `
Every part is read and checked against the manifest (bytes, SHA-256, rows), and the manifest
against what this database recorded of its batch, before anything is inserted. Events already in
raw_events (same id, or same user, provider and source_id) are left alone, so restoring twice
adds nothing. A target's manifests go newest first: an event archived twice comes back as its
newest version. Exit 3 if a manifest fails its check (the others are still restored), 1 if an
event could not be put back (its batch is then not marked restored).

Examples:
  omni-ingest archive restore --from file:///var/backups/omni/raw_events/2026-11-30/<batch>/manifest.json
  omni-ingest archive restore --from s3://crm-archive/raw-events/raw_events/2026-11-30/<batch>/manifest.json --renormalize --json
  omni-ingest archive restore --from s3://crm-archive/raw-events      # every batch under the target`,
    )
    .hook('preAction', refuseParentOptions)
    .action(action<RestoreFlags>(state, (ctx, flags) => runRestore(ctx, flags)));

  const verify = cmd
    .command('verify')
    .description('re-read manifests and parts: bytes, SHA-256 and rows, and no archived event missing (exit 3 on a mismatch)')
    .option('--from <uri>', 'a manifest, or a target to check every manifest under (default: every batch this database knows)');
  addS3Options(verify)
    .addHelpText(
      'after',
      `
Examples:
  omni-ingest archive verify
  omni-ingest archive verify --from s3://crm-archive/raw-events --json
  omni-ingest archive verify --from file:///var/backups/omni/raw_events/2026-11-30/<batch>/manifest.json`,
    )
    .hook('preAction', refuseParentOptions)
    .action(action<VerifyFlags>(state, (ctx, flags) => runVerify(ctx, flags)));

  cmd
    .command('list')
    .description('the archive batches, newest first: state, rows, bytes, target, manifest')
    .option('--state <state>', `only batches in this state (${STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many (default: 100)')
    .addHelpText('after', '\nExamples:\n  omni-ingest archive list\n  omni-ingest archive list --state verified --json')
    .hook('preAction', refuseParentOptions)
    .action(action<ListFlags>(state, (ctx, flags) => runList(ctx, flags)));
}
