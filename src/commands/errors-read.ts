// `errors list`, `errors groups`, `errors show`: reading dead letters.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { errorGroups, type GroupsResult, SPARK_DAYS, sparkline } from '../dead-letters/groups.js';
import { markPayload } from '../dead-letters/payload-mark.js';
import { afterSchema, type ErrorPage, type FullError, getError, listErrors } from '../dead-letters/read.js';
import { ExitCode, UsageError } from '../errors.js';
import { parseTraceRef, traceEvent } from '../trace/trace.js';
import { parseSelection, type SelectionFlags, selectionOptions } from './error-flags.js';
import { parseFlags, uuidFlag, wholeNumber } from './flags.js';
import { action, type RunState } from './run.js';
import { traceSummary } from './trace-render.js';

interface ListFlags extends SelectionFlags {
  limit?: string;
  after?: string;
}

const day = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');
const oneLine = (s: string, max: number) => {
  const t = s.replace(/\s+/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

function renderList(p: ErrorPage): string[] {
  if (p.errors.length === 0) return ['no dead letters match'];
  return [
    `${'id'.padEnd(36)}  ${'last seen (UTC)'.padEnd(16)}  ${'stage'.padEnd(9)} ${'provider'.padEnd(9)} ${'status'.padEnd(9)} tries  error`,
    ...p.errors.map(
      (e) =>
        `${e.id}  ${day(e.last_seen)}  ${e.stage.padEnd(9)} ${(e.provider ?? '-').padEnd(9)} ${e.status.padEnd(9)} ${String(e.attempts).padStart(5)}  ${oneLine(e.error, 100)}`,
    ),
    ...(p.next ? ['', `more: --after ${p.next}`] : []),
  ];
}

async function runList(ctx: Context, flags: ListFlags): Promise<number> {
  const f = parseFlags({ limit: wholeNumber(1, 10_000), after: afterSchema }, flags);
  const selection = parseSelection(flags, [], ctx.clock, ['open']);
  const page = await listErrors(await ctx.db(), selection, f.limit ?? 50, f.after);
  ctx.out.result(page, () => renderList(page));
  return ExitCode.ok;
}

function renderGroups(r: GroupsResult): string[] {
  if (r.groups.length === 0) return ['no dead letters match'];
  return [
    `${'signature'.padEnd(16)}  ${'stage'.padEnd(9)} ${'provider'.padEnd(9)} ${'count'.padStart(8)} ${'users'.padStart(6)}  ${'first seen'.padEnd(16)}  ${'last seen'.padEnd(16)}  ${`${SPARK_DAYS} days`.padEnd(SPARK_DAYS)}  pattern`,
    ...r.groups.map(
      (g) =>
        `${g.signature}  ${g.stage.padEnd(9)} ${(g.provider ?? '-').padEnd(9)} ${String(g.count).padStart(8)} ${String(g.users).padStart(6)}  ${day(g.first_seen)}  ${day(g.last_seen)}  ${sparkline(g.daily)}  ${oneLine(g.pattern, 120)}`,
    ),
    ...(r.total > r.groups.length ? ['', `${r.total - r.groups.length} smaller groups not shown (--limit)`] : []),
    '',
    'errors list --signature <sig> lists a group; errors retry --group <sig> retries it',
  ];
}

async function runGroups(ctx: Context, flags: ListFlags): Promise<number> {
  const f = parseFlags({ limit: wholeNumber(1, 10_000) }, flags);
  const selection = parseSelection(flags, [], ctx.clock, ['open']);
  const result = await errorGroups(await ctx.db(), selection, f.limit ?? 50, ctx.clock.now());
  ctx.out.result(result, () => renderGroups(result));
  return ExitCode.ok;
}

/** What the error's context says went wrong where: the issues (with payload paths) of any stage. */
function issuesOf(e: FullError): { path: string; message: string }[] {
  const issues = e.context.issues;
  return Array.isArray(issues)
    ? issues.filter((i): i is { path: string; message: string } => typeof i?.path === 'string' && typeof i?.message === 'string')
    : [];
}

/** The payload the error is about: its raw event's, else an import error's kept record. */
function payloadOf(e: FullError): { from: string; value: unknown } | undefined {
  if (e.event_exists) return { from: `raw event ${e.raw_event_id}`, value: e.payload };
  const record = e.context.record as { text?: unknown; truncated?: unknown } | undefined;
  if (typeof record?.text !== 'string') return undefined;
  try {
    return { from: `the kept record${record.truncated ? ' (truncated)' : ''}`, value: JSON.parse(record.text) };
  } catch {
    return { from: 'the kept record (not JSON)', value: record.text };
  }
}

function renderShow(e: FullError, summary: string[]): string[] {
  const issues = issuesOf(e);
  const payload = payloadOf(e);
  const marked = payload ? markPayload(payload.value, issues) : undefined;
  const { issues: _i, record: _r, ...context } = e.context;
  return [
    `error ${e.id}: ${e.stage} ${e.provider ?? '-'} ${e.status}, ${e.attempts} attempt(s)`,
    `  ${e.error}`,
    `  first seen ${e.first_seen.toISOString()}, last seen ${e.last_seen.toISOString()}`,
    ...(e.closed_at
      ? [
          `  ${e.status} ${e.closed_at.toISOString()} by ${e.closed_by ? `run ${e.closed_by}${e.closed_by_command ? ` (${e.closed_by_command})` : ' (purged from the ledger)'}` : 'hand'}: ${e.close_reason ?? ''}`,
        ]
      : []),
    `  user ${e.user_id ?? '-'}, raw event ${e.raw_event_id ?? '-'}${e.source_id ? `, source id ${e.source_id}` : ''}`,
    `  signature ${e.signature} (${e.group_open} open in the group): ${e.pattern}`,
    ...(issues.length ? ['issues:', ...issues.map((i) => `  ${i.path}: ${i.message}`)] : []),
    `context: ${JSON.stringify(context)}`,
    ...(payload && marked
      ? [`payload (from ${payload.from})${marked.placed ? ', failing paths marked >' : ''}:`, ...marked.lines]
      : [`payload: ${e.raw_event_id ? `raw event ${e.raw_event_id} is gone (archived or deleted)` : 'none kept'}`]),
    ...(summary.length ? ['trace:', ...summary.map((l) => `  ${l}`)] : []),
  ];
}

async function runShow(ctx: Context, text: string): Promise<number> {
  const parsed = uuidFlag.safeParse(text);
  if (!parsed.success) throw new UsageError(`"${text}" is not an error id (a UUID from \`omni-ingest errors list\`)`);
  const db = await ctx.db();
  const e = await getError(db, parsed.data);
  if (!e) throw new UsageError(`no dead letter ${parsed.data}`);
  const ref = e.raw_event_id
    ? parseTraceRef(e.raw_event_id)
    : e.provider && e.source_id
      ? parseTraceRef(`${e.provider}:${e.source_id}`)
      : undefined;
  // The letter itself matches, so trace finds something; a provider id several users hold is the
  // one UsageError it can still raise, and then the summary is left out, not the letter.
  const trace = ref
    ? await traceEvent(db, ref, e.user_id ?? undefined).catch((err: unknown) => {
        if (err instanceof UsageError) return undefined;
        throw err;
      })
    : undefined;
  const payload = payloadOf(e);
  ctx.out.result(
    {
      ...e,
      issues: issuesOf(e),
      payload: payload?.value ?? null,
      payloadFrom: payload?.from ?? null,
      trace: trace ?? null,
    },
    () => renderShow(e, trace ? traceSummary(trace) : []),
  );
  return ExitCode.ok;
}

export function registerErrorReads(errors: Command, state: RunState): void {
  selectionOptions(errors.command('list').description('dead letters, newest first (last seen), a page at a time'), 'open')
    .option('--limit <n>', 'errors per page (default: 50)')
    .option('--after <cursor|id>', 'the page after this one: the cursor the previous page printed (or an error id)')
    .addHelpText(
      'after',
      `
Examples:
  omni-ingest errors list --stage normalize --provider webform --since 24h
  omni-ingest errors list --signature 9c1d2e3f4a5b6c7d --limit 20 --json
  omni-ingest errors list --after 2026-11-30T01:02:03.456789Z~3f2a5c1e-8d4b-4c1a-9e2f-0a1b2c3d4e5f`,
    )
    .action(action<ListFlags>(state, (ctx, flags) => runList(ctx, flags)));
  selectionOptions(
    errors.command('groups').description(`dead letters grouped by signature, biggest first, with a ${SPARK_DAYS}-day sparkline`),
    'open',
  )
    .option('--limit <n>', 'groups shown (default: 50)')
    .addHelpText(
      'after',
      `
A signature is the stage, the provider and the message with its varying parts (numbers, ids,
UUIDs, emails, quoted values) taken out. The sparkline counts the group's errors by the day they
were last seen (UTC, oldest first, today last; · none).

Examples:
  omni-ingest errors groups
  omni-ingest errors groups --stage normalize --since 7d --json`,
    )
    .action(action<ListFlags>(state, (ctx, flags) => runGroups(ctx, flags)));
  errors
    .command('show')
    .description('one dead letter whole: the error, its context, attempts, the payload with the failing path marked, its trace')
    .argument('<id>', 'the error id (from `errors list`)')
    .addHelpText('after', '\nExample:\n  omni-ingest errors show 3f2a5c1e-8d4b-4c1a-9e2f-0a1b2c3d4e5f')
    .action(action(state, (ctx, _flags, args) => runShow(ctx, args[0] ?? '')));
}
