// `errors export` (SPEC §12): the selected errors' records as NDJSON that `import` accepts, one
// record per line — an import error's kept record, a normalize error's raw event payload — so an
// operator can fix them by hand and import the file again. Each import error remembers the file
// and line it was written to: a later import of that line resolves it even when the fix was to
// the very id that made it fail. A normalize error is resolved when the re-imported event
// (`import --update`) normalizes.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Queryable } from '../db/connect.js';
import { UsageError } from '../errors.js';
import { type ErrorSelection, SELECTION_WHERE, selectionParams } from './select.js';

const PAGE = 1000;

const exportRow = z.object({
  id: z.string(),
  stage: z.string(),
  user_id: z.string().nullable(),
  provider: z.string().nullable(),
  record_text: z.string().nullable(),
  record_truncated: z.boolean().nullable(),
  payload: z.unknown(),
});
type ExportRow = z.infer<typeof exportRow>;

async function scopes(db: Queryable, selection: ErrorSelection): Promise<{ user_id: string | null; provider: string | null; n: number }[]> {
  const { rows } = await db.query<{ user_id: string | null; provider: string | null; n: number }>(
    `
SELECT e.user_id, e.provider, count(*)::int AS n
FROM public.raw_event_errors e
WHERE ${SELECTION_WHERE}
  AND e.stage IN ('import', 'normalize')
GROUP BY 1, 2
ORDER BY 3 DESC`,
    selectionParams(selection),
  );
  return rows;
}

async function page(db: Queryable, selection: ErrorSelection, after: string | undefined): Promise<ExportRow[]> {
  const { rows } = await db.query(
    `
SELECT e.id, e.stage, e.user_id, e.provider,
       e.context -> 'record' ->> 'text' AS record_text,
       (e.context -> 'record' ->> 'truncated')::boolean AS record_truncated,
       CASE WHEN e.stage = 'normalize' THEN r.payload END AS payload
FROM public.raw_event_errors e
LEFT JOIN public.raw_events r ON e.stage = 'normalize' AND r.id = e.raw_event_id
WHERE ${SELECTION_WHERE}
  AND e.stage IN ('import', 'normalize')
  AND ($9::uuid IS NULL OR e.id > $9)
ORDER BY e.id
LIMIT $10`,
    [...selectionParams(selection), after ?? null, PAGE],
  );
  return rows.map((r) => exportRow.parse(r));
}

/**
 * Forgets the marks of errors written to this file by an earlier export, which the file about to
 * replace it no longer holds: importing its line 1 must not resolve whatever an older export put
 * on line 1.
 */
async function forgetEarlierMarks(db: Queryable, file: string): Promise<void> {
  await db.query(
    `
UPDATE public.raw_event_errors e
SET context = e.context - 'exported'
WHERE e.stage = 'import'
  AND e.status = 'open'
  AND e.context -> 'exported' ->> 'file' = $1`,
    [file],
  );
}

async function markExported(db: Queryable, ids: string[], lines: number[], file: string): Promise<void> {
  await db.query(
    `
UPDATE public.raw_event_errors e
SET context = e.context || jsonb_build_object('exported', jsonb_build_object('file', $3::text, 'line', x.line, 'at', now()))
FROM unnest($1::uuid[], $2::int[]) AS x(id, line)
WHERE e.id = x.id`,
    [ids, lines, file],
  );
}

/** One line of NDJSON from a record's text: compacted when it is JSON, its line breaks made spaces when not. */
function oneLine(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text.replace(/\r?\n|\r/g, ' ');
  }
}

export interface ExportSummary {
  file: string;
  userId: string;
  provider: string;
  written: number;
  /** Import errors among them (resolved by importing the file) and normalize errors (by import --update). */
  imports: number;
  normalizes: number;
  /** Not written, and why. */
  skipped: { truncated: number; noRecord: number; eventGone: number; otherStages: number };
}

export async function exportErrors(db: Queryable, selection: ErrorSelection, out: string): Promise<ExportSummary> {
  const found = await scopes(db, selection);
  if (found.length === 0) throw new UsageError('no import or normalize errors match: nothing to export');
  if (found.length > 1) {
    const shown = found.slice(0, 5).map((s) => `--user ${s.user_id} --provider ${s.provider} (${s.n})`);
    throw new UsageError(
      `the selection spans ${found.length} users and providers; an import file holds one of each: export them one by one`,
      {
        hint: shown.join('; '),
      },
    );
  }
  const { user_id: userId, provider } = found[0]!;
  if (!userId || !provider) throw new UsageError('the selected errors name no user or provider: they cannot be imported again');
  const file = path.resolve(out);
  const tmp = `${file}.${process.pid}.tmp`;
  const summary: ExportSummary = {
    file,
    userId,
    provider,
    written: 0,
    imports: 0,
    normalizes: 0,
    skipped: { truncated: 0, noRecord: 0, eventGone: 0, otherStages: 0 },
  };
  const marks: { ids: string[]; lines: number[] } = { ids: [], lines: [] };
  const fd = fs.openSync(tmp, 'w');
  try {
    let after: string | undefined;
    for (;;) {
      const rows = await page(db, selection, after);
      if (rows.length === 0) break;
      after = rows.at(-1)!.id;
      const lines: string[] = [];
      for (const r of rows) {
        let line: string | undefined;
        if (r.stage === 'import') {
          if (r.record_text === null) summary.skipped.noRecord++;
          else if (r.record_truncated) summary.skipped.truncated++;
          else line = oneLine(r.record_text);
        } else if (r.payload === null || r.payload === undefined) summary.skipped.eventGone++;
        else line = JSON.stringify(r.payload);
        if (line === undefined) continue;
        lines.push(line);
        summary.written++;
        if (r.stage === 'import') {
          summary.imports++;
          marks.ids.push(r.id);
          marks.lines.push(summary.written);
        } else summary.normalizes++;
      }
      if (lines.length > 0) fs.writeSync(fd, `${lines.join('\n')}\n`);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // Before the file is replaced (a crash between the two leaves errors unmarked, never marked
  // with a line of another file), then only once the new file is there: a mark names a line
  // that exists.
  await forgetEarlierMarks(db, file);
  fs.renameSync(tmp, file);
  for (let i = 0; i < marks.ids.length; i += PAGE) {
    await markExported(db, marks.ids.slice(i, i + PAGE), marks.lines.slice(i, i + PAGE), file);
  }
  return summary;
}
