// The human output of `omni-ingest archive …` (the --json documents are the results as they are).
import type { ChalkInstance } from 'chalk';
import type { BatchRow } from '../archive/batch-sql.js';
import type { ArchiveSummary } from '../archive/find.js';
import type { ArchiveDryRun } from '../archive/dry-run.js';
import type { RestoreResult } from '../archive/restore.js';
import type { RestoreAllResult } from '../archive/restore-all.js';
import type { ArchiveRunResult } from '../archive/run.js';
import type { ArchiveVerifyReport } from '../archive/verify.js';

const n = (v: number) => v.toLocaleString('en-US');
const size = (bytes: number) =>
  bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function renderDryRun(r: ArchiveDryRun): string[] {
  return [
    `archive (dry run): ${n(r.rows)} events older than ${r.cutoff} would go to ${r.target}: ${size(r.ndjsonBytes)} of NDJSON, about ${size(r.estimatedBytes)} gzipped; nothing written`,
    ...(r.unfinished.rows > 0
      ? [`${n(r.unfinished.rows)} more are in ${n(r.unfinished.batches)} unfinished batch(es) of this target, which the run finishes first`]
      : []),
    ...(r.heldByOtherTargets > 0
      ? [
          `${n(r.heldByOtherTargets)} more are held by unfinished batches of other targets and would not be archived (run archive --to each to finish them): ${r.otherTargets.join(', ')}`,
        ]
      : []),
    ...(r.pendingNormalize > 0
      ? [`${n(r.pendingNormalize)} more are old enough but still waiting to be normalized: they stay hot until they are`]
      : []),
  ];
}

export function renderRun(r: ArchiveRunResult): string[] {
  const deleted = r.batches.filter((b) => b.state === 'deleted').length;
  const lines = [
    `archive: ${n(r.deleted)} events archived to ${r.target} in ${seconds(r.elapsedMs)}: ${deleted} batch(es) written, verified and deleted (${size(r.bytes)})${r.kept ? `; ${n(r.kept)} kept hot (changed since written, or queued again)` : ''}`,
  ];
  if (r.stopReason !== 'done') lines.push(`stopped (${r.stopReason}) with ${n(r.left)} eligible events left: run it again to continue`);
  else if (r.heldElsewhere > 0)
    lines.push(`${r.heldElsewhere} batch(es) of this target are being archived by another process; ${n(r.left)} events left`);
  if (r.heldByOtherTargets > 0)
    lines.push(
      `${n(r.heldByOtherTargets)} events old enough are held by unfinished batches of other targets and were not archived (run archive --to each to finish them, \`archive list\` shows why they stopped): ${r.otherTargets.join(', ')}`,
    );
  else if (r.otherTargets.length > 0)
    lines.push(`unfinished batches of other targets (run archive --to each to finish them): ${r.otherTargets.join(', ')}`);
  return lines;
}

const renormalized = (r: { renormalize: boolean; dryRun: boolean }) =>
  r.dryRun
    ? 'dry run: nothing was written'
    : r.renormalize
      ? 'the restored events are queued for normalize'
      : 'the restored events are not normalized again (--renormalize to queue them)';

/** What happened to a manifest's events, beyond those put back. */
function restoreCounts(r: Omit<RestoreResult, 'manifestUri' | 'batchId' | 'status' | 'problem' | 'elapsedMs'>): string {
  const would = r.dryRun ? 'would be ' : '';
  return [
    `${n(r.restored)} of ${n(r.rows)} events ${would}put back`,
    `${n(r.present)} were there already`,
    ...(r.otherVersion
      ? [`${n(r.otherVersion)} kept as raw_events holds them (another version: changed since, or a newer archive of it)`]
      : []),
    ...(r.newerElsewhere ? [`${n(r.newerElsewhere)} left archived (a newer version of each is in another batch)`] : []),
    ...(r.conflicts ? [`${n(r.conflicts)} not restored (another event holds their source id)`] : []),
  ].join('; ');
}

export function renderRestore(r: RestoreResult): string[] {
  if (r.status === 'failed') return [`✗ ${r.manifestUri}: ${r.problem}`];
  return [
    `archive restore: ${restoreCounts(r).replace(' put back', ` put back from ${r.manifestUri}`)} in ${seconds(r.elapsedMs)}`,
    ...(r.problem ? [`not every event is back: ${r.problem}`] : []),
    renormalized(r),
  ];
}

export function renderRestoreAll(r: RestoreAllResult): string[] {
  const each = r.manifests.flatMap((m) => (m.status === 'failed' ? renderRestore(m) : renderRestore(m).slice(0, m.problem ? 2 : 1)));
  const failed = r.failed ? `; ${r.failed} manifest(s) failed their check, nothing restored from them` : '';
  const incomplete = r.incomplete ? `; ${r.incomplete} manifest(s) not wholly restored` : '';
  return [
    ...each,
    `archive restore: ${r.manifests.length} manifest(s) under ${r.target}, newest first (an event in several is put back as its newest version): ${restoreCounts(r)}${failed}${incomplete}`,
    renormalized(r),
  ];
}

export function renderVerify(r: ArchiveVerifyReport, style: ChalkInstance): string[] {
  const lines = r.manifests.flatMap((m) => [
    `${m.ok ? style.green('✓') : style.red('✗')} ${m.manifestUri}: ${n(m.rows)} events in ${m.parts.length} part(s)${m.state ? ` (${m.state})` : ''}`,
    ...m.problems.map((p) => `    ${p}`),
  ]);
  const verdict =
    r.checked === 0 ? 'no archive batches to check' : r.ok ? 'every manifest and part checks out' : `${r.failed} of ${r.checked} failed`;
  return [...lines, `archive verify: ${r.checked} manifest(s), ${n(r.rows)} events, in ${seconds(r.elapsedMs)}: ${verdict}`];
}

export function renderList(batches: BatchRow[]): string[] {
  if (batches.length === 0) return ['no archive batches'];
  return batches.map((b) => {
    const when = (b.deleted_at ?? b.planned_at).toISOString().slice(0, 19).replace('T', ' ');
    const lease = b.leased_by && b.lease_until && b.lease_until > new Date() ? ` [leased by ${b.leased_by}]` : '';
    const err = b.error ? ` — last error: ${b.error}` : '';
    return `${b.id} ${b.state.padEnd(8)} ${n(b.rows).padStart(10)} rows ${size(b.bytes).padStart(9)} ${when} ${b.manifest_uri ?? b.target}${lease}${err}`;
  });
}

/** The archive's lines of `stats`. */
export function renderArchiveSummary(a: ArchiveSummary): string[] {
  return [
    'retention:',
    `  oldest hot event     ${a.oldestHotEvent ? a.oldestHotEvent.toISOString() : 'none'} (${n(a.hotOlderThan180Days)} older than 180 days)`,
    `  archived             ${n(a.archived.rows)} events in ${n(a.archived.batches)} batch(es), ${size(a.archived.bytes)}${a.inProgress.batches ? `; ${n(a.inProgress.batches)} batch(es) in progress (${n(a.inProgress.rows)} events)` : ''}`,
  ];
}
