import type { Command } from 'commander';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { loadMigrationFiles } from '../migrate/files.js';
import { migrate, migrationStatus, ADOPTABLE_THROUGH, type MigrationStatus } from '../migrate/migrator.js';
import { migrationsDir } from '../paths.js';
import { runChecks } from '../verify/run.js';
import { action, type RunState } from './run.js';

interface MigrateFlags {
  to?: string;
  adopt?: boolean;
}

async function runMigrate(ctx: Context, flags: MigrateFlags): Promise<number> {
  const files = loadMigrationFiles(migrationsDir);
  const db = await ctx.db();
  const result = await migrate(db, {
    files,
    to: flags.to,
    adopt: flags.adopt === true,
    verifyAdoption: async (target) => {
      const checks = await runChecks(target);
      const failures = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      return { ok: failures.length === 0, failures };
    },
    logger: ctx.logger,
  });
  ctx.out.result({ ok: true, database: db.target, ...result }, () => {
    const lines: string[] = [];
    if (result.adopted.length > 0) lines.push(`adopted ${result.adopted.join(', ')} (verified, recorded without running)`);
    if (result.applied.length === 0)
      lines.push(`nothing to apply: the database is up to date${result.pendingAfter.length ? ` up to ${flags.to}` : ''}`);
    else
      lines.push(
        `applied ${result.applied.length} migration${result.applied.length === 1 ? '' : 's'}: ${result.applied.map((a) => a.name).join(', ')}`,
      );
    if (result.pendingAfter.length > 0) lines.push(`still pending: ${result.pendingAfter.join(', ')}`);
    return lines;
  });
  return ExitCode.ok;
}

const marks: Record<MigrationStatus['state'], string> = { applied: '✓', pending: '·', changed: '✗', unknown: '?' };

async function runStatus(ctx: Context): Promise<number> {
  const files = loadMigrationFiles(migrationsDir);
  const db = await ctx.db();
  const statuses = await migrationStatus(db, files);
  const problems = statuses.filter((s) => s.state === 'changed' || s.state === 'unknown');
  ctx.out.result({ ok: problems.length === 0, database: db.target, migrations: statuses }, () =>
    statuses.map((s) => {
      const when = s.appliedAt ? `${s.appliedAt}${s.adopted ? ' (adopted)' : ''}` : '';
      const sum = (s.checksum ?? s.appliedChecksum ?? '').slice(0, 12);
      const note =
        s.state === 'changed'
          ? `  file changed since applied (was ${s.appliedChecksum?.slice(0, 12)})`
          : s.state === 'unknown'
            ? '  not in this version'
            : '';
      return `${marks[s.state]} ${s.state.padEnd(7)} ${s.name.padEnd(34)} ${sum}  ${when}${note}`.trimEnd();
    }),
  );
  return problems.length === 0 ? ExitCode.ok : ExitCode.checkFailed;
}

export function registerMigrate(cmd: Command, state: RunState): void {
  cmd
    .option('--to <name>', 'stop after this migration (e.g. 20250830_legacy_baseline)')
    .option(
      '--adopt',
      `adopt a database migrated by other means: verify, then record the migrations through ${ADOPTABLE_THROUGH} as applied`,
    )
    .addHelpText(
      'after',
      `
Examples:
  omni-ingest migrate                                  apply everything pending
  omni-ingest migrate --to 20250830_legacy_baseline    only the legacy baseline
  omni-ingest migrate --adopt                          a production database that already has the schema
  omni-ingest migrate status --json                    applied and pending, with checksums

Several processes may run migrate at once: they queue, and each file is applied once.`,
    )
    .action(action<MigrateFlags>(state, (ctx, flags) => runMigrate(ctx, flags)));
  cmd
    .command('status')
    .description('list applied and pending migrations with their checksums (exit 3 if a file changed after it was applied)')
    .action(action(state, (ctx) => runStatus(ctx)));
}
