// The checks `verify` makes beyond the catalog's shapes (issue 12): what `migrate --adopt` relies
// on and a look at definitions alone misses. Table privileges per role (RLS policies mean nothing
// to a role without the grant, and everything to one with too many), the insight fingerprints'
// values (a disabled trigger or a bulk update leaves the unique key guarding wrong values), and
// the tool's own objects — ledger, queues and the triggers that fill them — for each of its
// migrations recorded as applied.
import type { Queryable } from '../db/connect.js';
import { ledgerExists, listApplied } from '../migrate/sql.js';
import type { CheckResult } from './checks.js';
import { INGESTION_TABLES } from './catalog.js';
import * as sql from './deep-sql.js';

export interface DeepOptions {
  /** Recompute every fingerprint instead of a sample. */
  thorough?: boolean;
  /** Rows recomputed without --thorough. */
  sample?: number;
}

export const DEFAULT_SAMPLE = 10_000;

const pass = (name: string, detail: string): CheckResult => ({ name, ok: true, detail });
const fail = (name: string, detail: string): CheckResult => ({ name, ok: false, detail });

/** What each role must hold on every ingestion table (SPEC §3.2.6), nothing more, nothing less. */
const WANTED: Record<string, (table: string) => sql.Privilege[]> = {
  service_role: () => ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  // Read own rows, insert own notes: the policies need exactly these grants.
  authenticated: (table) => (table === 'interactions' ? ['SELECT', 'INSERT'] : ['SELECT']),
  anon: () => [],
};

async function privileges(db: Queryable): Promise<CheckResult[]> {
  const roles = Object.keys(WANTED);
  const held = await sql.tablePrivileges(db, roles, INGESTION_TABLES);
  const existing = await sql.existingTables(
    db,
    INGESTION_TABLES.map((t) => `public.${t}`),
  );
  return roles.map((role) => {
    const name = `table privileges of ${role}`;
    const missing: string[] = [];
    const extra: string[] = [];
    for (const table of INGESTION_TABLES) {
      if (!existing.has(`public.${table}`)) continue;
      const has = held.get(`${role}.${table}`) ?? new Set<sql.Privilege>();
      const want = WANTED[role]?.(table) ?? [];
      // service_role may also TRUNCATE (Supabase grants it); the others may not.
      const allowed = role === 'service_role' ? [...want, 'TRUNCATE'] : want;
      const lacks = want.filter((p) => !has.has(p));
      const over = [...has].filter((p) => !allowed.includes(p));
      if (lacks.length) missing.push(`${table} (${lacks.join(', ')})`);
      if (over.length) extra.push(`${table} (${over.join(', ')})`);
    }
    const problems = [
      ...(missing.length ? [`lacks ${missing.join('; ')}`] : []),
      ...(extra.length ? [`must not have ${extra.join('; ')}`] : []),
    ];
    if (problems.length) return fail(name, problems.join('; '));
    return pass(
      name,
      role === 'service_role'
        ? 'SELECT, INSERT, UPDATE, DELETE on every ingestion table'
        : role === 'authenticated'
          ? 'SELECT on every ingestion table, INSERT on interactions, nothing else'
          : 'nothing on any ingestion table',
    );
  });
}

async function fingerprints(db: Queryable, options: DeepOptions): Promise<CheckResult[]> {
  const present = await sql.existingTables(db, ['public.ai_insights']);
  if (!present.has('public.ai_insights')) return [fail('ai_insights fingerprint values', 'table ai_insights is missing')];
  const triggers = await sql.fingerprintTriggers(db);
  const trigger = triggers.some((t) => t.enabled)
    ? pass(
        'ai_insights fingerprint trigger',
        `${triggers
          .filter((t) => t.enabled)
          .map((t) => t.name)
          .join(', ')} derives it on every insert and update`,
      )
    : fail(
        'ai_insights fingerprint trigger',
        triggers.length
          ? `${triggers.map((t) => t.name).join(', ')} is disabled: writers' fingerprints are trusted`
          : 'no BEFORE INSERT OR UPDATE trigger derives it: writers may store any value',
      );
  const s = await sql.sampleFingerprints(db, options.thorough ? 'all' : (options.sample ?? DEFAULT_SAMPLE));
  const scope = s.all
    ? `all ${s.checked} rows`
    : `a sample of ${s.checked} rows (of ${s.total === null ? 'a table not analyzed yet' : `about ${s.total}`}; --thorough checks all)`;
  const values =
    s.wrong === 0
      ? pass('ai_insights fingerprint values', `recomputed ${scope}: all match`)
      : fail(
          'ai_insights fingerprint values',
          `recomputed ${scope}: ${s.wrong} do not match SHA-256 of kind|subject_type|subject_id|model|title (e.g. ${s.examples.join(', ')})`,
        );
  return [trigger, values];
}

/** The tool's own objects, per migration of its own: what the migration creates must be there and on. */
const OWN: { migration: string; tables: string[]; triggers: [table: string, trigger: string][] }[] = [
  {
    migration: '20261128_run_ledger_and_queue',
    tables: ['omni_ingest.runs', 'omni_ingest.normalize_queue'],
    triggers: [['public.raw_events', 'raw_events_enqueue_normalize']],
  },
  {
    migration: '20261129_stage_queues',
    tables: ['omni_ingest.work_queue'],
    triggers: [
      ['public.interactions', 'interactions_enqueue_new'],
      ['public.interactions', 'interactions_enqueue_changed'],
      ['public.ai_insights', 'ai_insights_enqueue_new'],
    ],
  },
  { migration: '202611300930_pipeline_contacts', tables: ['omni_ingest.pipeline_contacts'], triggers: [] },
  {
    migration: '202611301100_embedding_swap',
    tables: ['omni_ingest.embedding_backfill_ranges', 'omni_ingest.embedding_legacy_rejects'],
    triggers: [],
  },
];

async function ownSchema(db: Queryable): Promise<CheckResult[]> {
  if (!(await ledgerExists(db)))
    return [pass("omni-ingest's own schema", 'no migration of its own applied yet (the ledger is absent): nothing to check')];
  const applied = new Set((await listApplied(db)).map((a) => a.name));
  const due = OWN.filter((o) => applied.has(o.migration));
  const tables = ['omni_ingest.schema_migrations', ...due.flatMap((o) => o.tables)];
  const present = await sql.existingTables(db, tables);
  const triggers = await sql.triggersOn(db, [...new Set(due.flatMap((o) => o.triggers.map(([t]) => t)))]);
  const missingTables = tables.filter((t) => !present.has(t));
  const missingTriggers = due.flatMap((o) => o.triggers.filter(([t, n]) => !triggers.has(`${t}.${n}`)).map(([t, n]) => `${n} on ${t}`));
  const disabled = due.flatMap((o) => o.triggers.filter(([t, n]) => triggers.get(`${t}.${n}`) === false).map(([t, n]) => `${n} on ${t}`));
  const tableCheck =
    missingTables.length === 0
      ? pass("omni-ingest's tables", `${tables.length} present: the ledger, the run ledger and the queues`)
      : fail("omni-ingest's tables", `missing: ${missingTables.join(', ')}`);
  const count = due.reduce((n, o) => n + o.triggers.length, 0);
  const triggerCheck =
    missingTriggers.length === 0 && disabled.length === 0
      ? pass("omni-ingest's queue triggers", `${count} present and enabled`)
      : fail(
          "omni-ingest's queue triggers",
          [
            missingTriggers.length ? `missing: ${missingTriggers.join(', ')}` : '',
            disabled.length ? `disabled: ${disabled.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join('; ') + ' (work would never be queued)',
        );
  return [tableCheck, triggerCheck];
}

export async function deepChecks(db: Queryable, options: DeepOptions = {}): Promise<CheckResult[]> {
  return [...(await privileges(db)), ...(await fingerprints(db, options)), ...(await ownSchema(db))];
}
