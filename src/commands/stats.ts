import type { Command } from 'commander';
import { archiveSummary } from '../archive/find.js';
import type { Context } from '../context.js';
import { type OpenDeadLetters, openDeadLetters } from '../dead-letters/health.js';
import { ExitCode } from '../errors.js';
import { readStats, type Stats } from '../stats/sql.js';
import { renderArchiveSummary } from './archive-render.js';
import { action, type RunState } from './run.js';

export function renderStats(s: Stats): string[] {
  const lines = ['tables:', ...s.tables.map((t) => `  ${t.table.padEnd(20)} ${t.rows}`)];
  lines.push('failures by provider and stage (24 h):');
  lines.push(
    ...(s.failures24h.length
      ? s.failures24h.map((f) => `  ${(f.provider ?? '-').padEnd(10)} ${f.stage.padEnd(10)} ${f.count}`)
      : ['  none']),
  );
  lines.push('timeline entries written per day:');
  lines.push(...(s.timelinePerDay.length ? s.timelinePerDay.map((d) => `  ${d.day} ${d.count}`) : ['  none']));
  lines.push('embedding coverage:');
  lines.push(
    ...s.embeddingCoverage.map(
      (c) => `  ${c.owner_type.padEnd(12)} ${c.chunks} chunks for ${c.owners} owners (${c.with_vector} with ${s.vectorColumn})`,
    ),
  );
  lines.push(`  interactions embedded: ${s.interactionsEmbedded.embedded} of ${s.interactionsEmbedded.interactions}`);
  lines.push('jobs by status:', ...(s.jobs.length ? s.jobs.map((j) => `  ${j.status.padEnd(10)} ${j.count}`) : ['  none']));
  lines.push(
    'pending work by stage:',
    ...(s.queue.length ? s.queue.map((q) => `  ${q.stage.padEnd(16)} ${q.pending}${q.leased ? ` (${q.leased} leased)` : ''}`) : ['  none']),
  );
  return lines;
}

function renderDeadLetters(d: OpenDeadLetters): string[] {
  return [
    'open dead letters by stage:',
    ...(d.byStage.length ? d.byStage.map((s) => `  ${s.stage.padEnd(10)} ${s.open}`) : ['  none']),
    ...(d.topSignatures.length ? ['top open signatures (errors list --signature <sig> lists them):'] : []),
    ...d.topSignatures.map((t) => `  ${t.signature} ${String(t.count).padStart(8)}  ${t.stage} ${t.provider ?? '-'}: ${t.pattern}`),
  ];
}

async function runStats(ctx: Context): Promise<number> {
  const db = await ctx.db();
  const stats = { ...(await readStats(db)), deadLetters: await openDeadLetters(db), archive: await archiveSummary(db) };
  ctx.out.result(stats, () => [...renderStats(stats), ...renderDeadLetters(stats.deadLetters), ...renderArchiveSummary(stats.archive)]);
  return ExitCode.ok;
}

export function registerStats(cmd: Command, state: RunState): void {
  cmd.addHelpText('after', '\nExamples:\n  omni-ingest stats\n  omni-ingest stats --json').action(action(state, (ctx) => runStats(ctx)));
}
