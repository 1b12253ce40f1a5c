// Every promise of SPEC §3.2, judged against the catalog. Checks match definitions, not names,
// so a database hardened by other means (Supabase, psql) passes when it keeps the promises.
import { INGESTION_TABLES, type Catalog, type Policy } from './catalog.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

type Check = (c: Catalog) => CheckResult | CheckResult[];

const TIMESTAMPTZ_TABLES = ['raw_events', 'interactions', 'ai_insights', 'contact_timeline', 'embeddings'];

const pass = (name: string, detail: string): CheckResult => ({ name, ok: true, detail });
const fail = (name: string, detail: string): CheckResult => ({ name, ok: false, detail });

function columnsOf(c: Catalog, table: string) {
  return c.columns.filter((col) => col.table === table);
}

function columnType(c: Catalog, table: string, column: string): string | undefined {
  return c.columns.find((col) => col.table === table && col.column === column)?.type;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));

const extension: Check = (c) =>
  c.vectorVersion
    ? pass('extension vector', `pgvector ${c.vectorVersion} installed`)
    : fail('extension vector', 'pgvector is not installed in this database');

const authCompat: Check = (c) => {
  const missing = ['anon', 'authenticated', 'service_role'].filter((r) => !c.roles.includes(r));
  if (!c.hasAuthUid) missing.unshift('auth.uid()');
  return missing.length === 0
    ? pass('auth.uid() and roles', 'auth.uid(), anon, authenticated, service_role present')
    : fail('auth.uid() and roles', `missing: ${missing.join(', ')}`);
};

const timestamps: Check = (c) =>
  TIMESTAMPTZ_TABLES.map((table) => {
    const name = `timestamps of ${table}`;
    const cols = columnsOf(c, table).filter((col) => col.type.startsWith('timestamp'));
    if (!c.tables.has(table)) return fail(name, 'table is missing');
    const naive = cols.filter((col) => col.type !== 'timestamp with time zone');
    return naive.length === 0
      ? pass(name, `${cols.length} column${cols.length === 1 ? '' : 's'} timestamptz (${cols.map((x) => x.column).join(', ')})`)
      : fail(name, `not timestamptz: ${naive.map((x) => `${x.column} (${x.type})`).join(', ')}`);
  });

const embeddingVector: Check = (c) => {
  const name = 'embeddings.embedding_v vector(1536)';
  const v = columnType(c, 'embeddings', 'embedding_v');
  if (v === 'vector(1536)') return pass(name, 'vector(1536)');
  // After `embeddings swap` (SPEC §10) the vector column is `embedding` and the text is kept aside.
  const swapped =
    columnType(c, 'embeddings', 'embedding') === 'vector(1536)' && columnType(c, 'embeddings', 'embedding_legacy') !== undefined;
  if (v === undefined && swapped) return pass(name, 'swapped: embedding is vector(1536), legacy text in embedding_legacy');
  return fail(name, v === undefined ? 'column embedding_v is missing' : `embedding_v is ${v}, expected vector(1536)`);
};

const legacyEmbeddingKept: Check = (c) => {
  const name = 'embeddings.embedding kept';
  const legacy = columnType(c, 'embeddings', 'embedding');
  if (legacy === 'text') return pass(name, 'legacy text column kept for the backfill');
  if (legacy === 'vector(1536)' && columnType(c, 'embeddings', 'embedding_legacy') === 'text')
    return pass(name, 'kept as embedding_legacy after the swap');
  return fail(name, legacy === undefined ? 'column embedding is missing' : `embedding is ${legacy}`);
};

const contactForeignKey: Check = (c) => {
  const name = 'interactions.contact_id foreign key';
  const fks = c.constraints.filter((k) => k.table === 'interactions' && k.type === 'f' && sameSet(k.columns, ['contact_id']));
  if (fks.length !== 1)
    return fail(name, `${fks.length} foreign keys on contact_id (${fks.map((k) => k.name).join(', ') || 'none'}), expected exactly one`);
  const fk = fks[0]!;
  if (fk.ref_table !== 'contacts' || !sameSet(fk.ref_columns ?? [], ['id']))
    return fail(name, `${fk.name} references ${fk.ref_table}, expected contacts(id)`);
  if (fk.on_delete !== 'n') return fail(name, `${fk.name} is ON DELETE ${deleteAction(fk.on_delete)}, expected SET NULL`);
  return pass(name, `one foreign key (${fk.name}) → contacts(id) ON DELETE SET NULL`);
};

function deleteAction(code: string): string {
  return ({ a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' } as Record<string, string>)[code] ?? code;
}

const duplicateIndex: Check = (c) => {
  const name = 'duplicate index dropped';
  const named = c.indexes.find((i) => i.table === 'raw_events' && i.name === 'raw_events_user_provider_occurred_idx');
  if (named) return fail(name, 'raw_events_user_provider_occurred_idx still exists');
  const seen = new Map<string, string>();
  for (const i of c.indexes.filter((x) => (INGESTION_TABLES as readonly string[]).includes(x.table))) {
    const key = `${i.table}|${i.definition}`;
    const twin = seen.get(key);
    if (twin && !i.partial) return fail(name, `${i.name} duplicates ${twin} on ${i.table}(${i.keys.join(', ')})`);
    seen.set(key, i.name);
  }
  return pass(name, 'raw_events_user_provider_occurred_idx is gone; no identical indexes on ingestion tables');
};

function helperTable(table: string, wanted: Record<string, string>, extra?: (c: Catalog) => string | undefined): Check {
  return (c) => {
    const name = `table ${table}`;
    if (!c.tables.has(table)) return fail(name, 'table is missing');
    const problems = Object.entries(wanted).flatMap(([col, type]) => {
      const actual = columnType(c, table, col);
      return actual === undefined ? [`${col} missing`] : actual !== type ? [`${col} is ${actual}, expected ${type}`] : [];
    });
    const more = extra?.(c);
    if (more) problems.push(more);
    return problems.length === 0 ? pass(name, `columns ${Object.keys(wanted).join(', ')}`) : fail(name, problems.join('; '));
  };
}

const contactIdentities = helperTable(
  'contact_identities',
  {
    id: 'uuid',
    user_id: 'uuid',
    contact_id: 'uuid',
    kind: 'text',
    value: 'text',
    provider: 'text',
    created_at: 'timestamp with time zone',
  },
  (c) => {
    const fk = c.constraints.find((k) => k.table === 'contact_identities' && k.type === 'f' && sameSet(k.columns, ['contact_id']));
    if (fk?.ref_table !== 'contacts') return 'no foreign key contact_id → contacts';
    return fk.on_delete === 'c' ? undefined : `contact_id foreign key is ON DELETE ${deleteAction(fk.on_delete)}, expected CASCADE`;
  },
);

const rawEventErrors = helperTable('raw_event_errors', {
  id: 'uuid',
  raw_event_id: 'uuid',
  user_id: 'uuid',
  provider: 'text',
  stage: 'text',
  error: 'text',
  context: 'jsonb',
  error_at: 'timestamp with time zone',
});

const fingerprint: Check = (c) => {
  const name = 'ai_insights.fingerprint';
  const type = columnType(c, 'ai_insights', 'fingerprint');
  if (type === undefined) return fail(name, 'column fingerprint is missing');
  if (c.insightsWithoutFingerprint) return fail(name, `${c.insightsWithoutFingerprint} rows have no fingerprint`);
  return pass(name, 'present and filled on every row');
};

const embeddingChunkColumns: Check = (c) => {
  const name = 'embeddings.content_hash, chunk_index';
  const missing = ['content_hash', 'chunk_index'].filter((col) => columnType(c, 'embeddings', col) === undefined);
  return missing.length === 0 ? pass(name, 'present') : fail(name, `missing: ${missing.join(', ')}`);
};

const UNIQUES: [string, string[]][] = [
  ['raw_events', ['user_id', 'provider', 'source_id']],
  ['interactions', ['user_id', 'source', 'source_id']],
  ['contact_identities', ['user_id', 'kind', 'value']],
  ['ai_insights', ['user_id', 'fingerprint']],
  ['embeddings', ['user_id', 'owner_type', 'owner_id', 'content_hash', 'chunk_index']],
];

const uniques: Check = (c) =>
  UNIQUES.map(([table, cols]) => {
    const name = `unique ${table}(${cols.join(', ')})`;
    const constraint = c.constraints.find((k) => k.table === table && k.type === 'u' && sameSet(k.columns, cols));
    if (constraint) return pass(name, `constraint ${constraint.name}`);
    const index = c.indexes.find((i) => i.table === table && i.unique && !i.partial && i.valid && sameSet(i.keys, cols));
    if (index) return pass(name, `unique index ${index.name}`);
    return fail(name, 'no unique constraint on these columns');
  });

// `user_id = auth.uid()` and Supabase's faster `user_id = (SELECT auth.uid() AS uid)` mean the same.
const norm = (expr: string | null) =>
  (expr ?? '')
    .toLowerCase()
    .replace(/::text/g, '')
    .replace(/\bselect\b/g, '')
    .replace(/\bas\s+\w+/g, '')
    .replace(/[\s()]/g, '');
const OWN = ['user_id=auth.uid', 'auth.uid=user_id'];
const isOwnOnly = (expr: string | null) => OWN.includes(norm(expr));
const isOwnNote = (expr: string | null) => {
  const n = norm(expr);
  return OWN.some((own) => n === `${own}andtype='note_added'` || n === `type='note_added'and${own}`);
};

function judgePolicies(table: string, policies: Policy[], serviceRoleBypassesRls: boolean): string[] {
  const problems: string[] = [];
  const forRole = (role: string) => policies.filter((p) => p.permissive && p.roles.includes(role));
  for (const p of policies.filter((x) => x.permissive && (x.roles.includes('anon') || x.roles.includes('public')))) {
    problems.push(`policy ${p.name} grants ${p.roles.join(', ')}`);
  }
  const auth = forRole('authenticated');
  if (!auth.some((p) => p.command === 'r' && isOwnOnly(p.using)))
    problems.push('no SELECT policy for authenticated with user_id = auth.uid()');
  for (const p of auth) {
    const note = table === 'interactions' && p.command === 'a' && isOwnNote(p.check);
    const readOwn = p.command === 'r' && isOwnOnly(p.using);
    if (!note && !readOwn) problems.push(`policy ${p.name} lets authenticated ${commandName(p.command)} beyond its own rows/notes`);
  }
  if (table === 'interactions' && !auth.some((p) => p.command === 'a')) problems.push('no INSERT policy for authenticated note_added rows');
  // On Supabase service_role is BYPASSRLS: every row is its own without a policy.
  const service = forRole('service_role');
  if (
    !serviceRoleBypassesRls &&
    !service.some((p) => p.command === '*' && norm(p.using) === 'true' && (p.check === null || norm(p.check) === 'true'))
  ) {
    problems.push('no ALL policy for service_role');
  }
  return problems;
}

function commandName(code: string): string {
  return ({ r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' } as Record<string, string>)[code] ?? code;
}

const rls: Check = (c) =>
  INGESTION_TABLES.map((table) => {
    const name = `row level security on ${table}`;
    const t = c.tables.get(table);
    if (!t) return fail(name, 'table is missing');
    if (!t.rls) return fail(name, 'RLS is not enabled');
    const problems = judgePolicies(
      table,
      c.policies.filter((p) => p.table === table),
      c.serviceRoleBypassesRls,
    );
    return problems.length === 0
      ? pass(
          name,
          `enabled; authenticated reads own rows${table === 'interactions' ? ', inserts own notes' : ''}; service_role all${c.serviceRoleBypassesRls ? ' (BYPASSRLS)' : ''}; anon none`,
        )
      : fail(name, problems.join('; '));
  });

const INDEXES: { name: string; table: string; method: string; keys: string[] }[] = [
  { name: 'GIN raw_events(payload)', table: 'raw_events', method: 'gin', keys: ['payload'] },
  { name: 'GIN interactions(body_raw)', table: 'interactions', method: 'gin', keys: ['body_raw'] },
  {
    name: 'timeline index contact_timeline(user_id, occurred_at desc)',
    table: 'contact_timeline',
    method: 'btree',
    keys: ['user_id', 'occurred_at DESC'],
  },
  {
    name: 'timeline index interactions(user_id, occurred_at desc)',
    table: 'interactions',
    method: 'btree',
    keys: ['user_id', 'occurred_at DESC'],
  },
  {
    name: 'contact index interactions(user_id, contact_id, occurred_at desc)',
    table: 'interactions',
    method: 'btree',
    keys: ['user_id', 'contact_id', 'occurred_at DESC'],
  },
  {
    name: 'contact index contact_timeline(user_id, contact_id, occurred_at desc)',
    table: 'contact_timeline',
    method: 'btree',
    keys: ['user_id', 'contact_id', 'occurred_at DESC'],
  },
  {
    name: 'provider index raw_events(user_id, provider, created_at desc)',
    table: 'raw_events',
    method: 'btree',
    keys: ['user_id', 'provider', 'created_at DESC'],
  },
];

const indexes: Check = (c) =>
  INDEXES.map((want) => {
    const found = c.indexes.find(
      (i) => i.table === want.table && i.method === want.method && !i.partial && i.keys.join(',') === want.keys.join(','),
    );
    if (!found) return fail(want.name, 'missing');
    return found.valid ? pass(want.name, found.name) : fail(want.name, `${found.name} is INVALID (a failed concurrent build); rebuild it`);
  });

const CHECKS: Check[] = [
  extension,
  authCompat,
  timestamps,
  embeddingVector,
  legacyEmbeddingKept,
  contactForeignKey,
  duplicateIndex,
  contactIdentities,
  rawEventErrors,
  fingerprint,
  embeddingChunkColumns,
  uniques,
  rls,
  indexes,
];

export function judge(catalog: Catalog): CheckResult[] {
  return CHECKS.flatMap((check) => check(catalog));
}
