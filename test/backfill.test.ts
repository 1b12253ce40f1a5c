// backfill through the binary over the bundled fixtures: every table's contents, a second run
// that changes nothing, and a run killed mid-way that ends in the same state when re-run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { cloneTarget, migratedTarget, type TestTarget } from './support/db.js';

const USER = '11111111-1111-4111-8111-111111111111';
const PROVIDERS = ['gmail', 'twilio', 'instagram', 'webform'];
const OFFLINE = ['--create-contacts', '--embedder', 'local', '--insights-provider', 'heuristic'];
const env = { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined };

interface StageJson {
  stage: string;
  counts: Record<string, number>;
  skipped?: string;
}
interface BackfillJson {
  status: string;
  stages: StageJson[];
}

async function prepare(): Promise<TestTarget> {
  const target = await migratedTarget();
  for (const p of PROVIDERS) {
    const r = await runCli([
      ...target.args,
      'import',
      path.join(packageRoot, 'fixtures', 'demo', `${p}.ndjson`),
      '--provider',
      p,
      '--user',
      USER,
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
  return target;
}

/**
 * Every table by natural keys (ids are random), so two databases can be compared. The score and
 * next-step texts are left out: they depend on the clock and on the order of Twilio webhooks,
 * which carry no time of their own and are stamped when imported.
 */
async function snapshot(target: TestTarget): Promise<Record<string, string[]>> {
  const db = await target.open();
  const q = async (sql: string) => (await db.query<{ k: string }>(sql)).rows.map((r) => r.k);
  try {
    const contactKey = `(SELECT string_agg(ci.kind || ':' || ci.value, ',' ORDER BY ci.kind, ci.value) FROM public.contact_identities ci WHERE ci.contact_id = %s)`;
    const key = (col: string) => contactKey.replace('%s', col);
    return {
      contacts: await q(`SELECT ${key('c.id')} || '|' || coalesce(c.display_name, '') AS k FROM public.contacts c ORDER BY 1`),
      interactions: await q(
        `SELECT concat_ws('|', i.source, i.source_id, i.type, coalesce(${key('i.contact_id')}, '-'), (i.contact_id IS NULL OR r.contact_id IS NOT NULL)) AS k FROM public.interactions i LEFT JOIN public.raw_events r ON r.id = i.raw_event_id ORDER BY 1`,
      ),
      embeddings: await q(
        `SELECT concat_ws('|', i.source_id, e.chunk_index, e.content_hash, vector_dims(e.embedding_v)) AS k FROM public.embeddings e JOIN public.interactions i ON i.id = e.owner_id ORDER BY 1`,
      ),
      insights: await q(
        `SELECT concat_ws('|', ${key('a.subject_id')}, a.kind, CASE WHEN a.kind IN ('score', 'next_step') THEN '' ELSE a.content ->> 'title' END, a.expires_at > a.created_at + interval '364 days') AS k FROM public.ai_insights a ORDER BY 1`,
      ),
      timeline: await q(
        `SELECT concat_ws('|', t.source_type, coalesce(i.source_id, a.kind), ${key('t.contact_id')}, CASE WHEN t.event_type IN ('insight_score', 'insight_next_step') THEN '' ELSE t.title END) AS k FROM public.contact_timeline t LEFT JOIN public.interactions i ON t.source_type = 'interaction' AND i.id = t.source_id LEFT JOIN public.ai_insights a ON t.source_type = 'insight' AND a.id = t.source_id ORDER BY 1`,
      ),
      errors: await q(`SELECT concat_ws('|', stage, provider, error) AS k FROM public.raw_event_errors ORDER BY 1`),
      queues: await q(`SELECT 'normalize' AS k FROM omni_ingest.normalize_queue UNION ALL SELECT stage FROM omni_ingest.work_queue`),
    };
  } finally {
    await db.close();
  }
}

describe('backfill over the bundled fixtures', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let untouched: TestTarget;
  let first: BackfillJson;
  let state: Record<string, string[]>;
  before(async () => {
    target = await prepare();
    untouched = await cloneTarget(target);
    const r = await runCli([...target.args, 'backfill', '--since', '2000-01-01', ...OFFLINE, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    first = r.json<BackfillJson>();
    state = await snapshot(target);
  });
  after(async () => {
    await target?.drop();
    await untouched?.drop();
  });

  it('runs every stage in order and reports counts per stage', () => {
    assert.equal(first.status, 'succeeded');
    assert.deepEqual(
      first.stages.map((s) => s.stage),
      ['normalize', 'resolve', 'embed', 'insights', 'timeline'],
    );
    for (const s of first.stages) assert.ok((s.counts.events ?? 0) > 0, `${s.stage} did nothing`);
  });

  it('fills every table as the stages promise', () => {
    const normalize = first.stages[0]!.counts;
    assert.equal(state.interactions!.length, normalize.inserted);
    assert.equal(state.errors!.length, 0, state.errors!.join('\n'));
    assert.deepEqual(state.queues, [], 'no work left in any queue');
    const linked = state.interactions!.filter((k) => !k.includes('|-|'));
    assert.ok(
      linked.length >= state.interactions!.length - 2,
      `only ${linked.length} of ${state.interactions!.length} interactions linked`,
    );
    assert.deepEqual(
      state.interactions!.filter((k) => !k.endsWith('|t')),
      [],
      'a linked interaction links its raw event',
    );
    assert.ok(state.contacts!.length > 0 && state.contacts!.every((k) => !k.startsWith('|')), 'every contact has identities');
    const embeddedOwners = new Set(state.embeddings!.map((k) => k.split('|')[0]));
    assert.ok(embeddedOwners.size >= state.interactions!.length - 5, `${embeddedOwners.size} interactions embedded`);
    assert.ok(state.embeddings!.every((k) => k.endsWith('|1536')));
    assert.equal(state.insights!.length, state.contacts!.length * 3, 'summary, next_step and score per contact');
    assert.ok(
      state.insights!.every((k) => k.endsWith('|t')),
      'insights expire a year out',
    );
    assert.equal(
      state.timeline!.length,
      linked.length + state.insights!.length,
      'one timeline entry per linked interaction and per insight',
    );
  });

  it('a second backfill changes nothing', async () => {
    const r = await runCli([...target.args, 'backfill', '--since', '2000-01-01', ...OFFLINE, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    for (const s of r.json<BackfillJson>().stages) assert.equal(s.counts.events ?? 0, 0, `${s.stage} found work again`);
    assert.deepEqual(await snapshot(target), state);
  });

  it('--reprocess walks the range again and still changes nothing', async () => {
    const r = await runCli([...target.args, 'backfill', '--since', '2000-01-01', '--reprocess', ...OFFLINE, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const stages = r.json<BackfillJson>().stages;
    assert.ok((stages.find((s) => s.stage === 'embed')?.counts.reused ?? 0) > 0, 'chunks are reused, not re-embedded');
    assert.equal(stages.find((s) => s.stage === 'embed')?.counts.embedded ?? 0, 0);
    assert.deepEqual(await snapshot(target), state);
  });

  it('killed mid-way and re-run, it ends in the same state', async () => {
    let kills = 0;
    for (const batches of [2, 9, 25]) {
      const killed = await killAfter(untouched, batches);
      if (killed) kills++;
    }
    assert.ok(kills >= 2, `only ${kills} kills landed`);
    const r = await runCli([...untouched.args, 'backfill', '--since', '2000-01-01', ...OFFLINE, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(untouched), state);
  });
});

describe('backfill arguments', () => {
  it('refuses unknown stages and bad flags with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--stages', 'normalize,fold'], /unknown fold/],
      [['--since', 'last tuesday'], /--since "last tuesday"/],
      [['--embedder', 'openai'], /OPENAI_API_KEY/],
      [['--concurrency', '0'], /--concurrency "0"/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['backfill', ...args], { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});

/** Starts a backfill with tiny batches and SIGKILLs it after `batches` batches of any stage. */
function killAfter(target: TestTarget, batches: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...NODE_FLAGS, binary, ...target.args, '--verbose', 'backfill', '--since', '2000-01-01', '--batch-size', '3', ...OFFLINE],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NO_COLOR: '1', OPENAI_API_KEY: '' },
      },
    );
    let seen = 0;
    let sent = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      seen += chunk.split('\n').filter((l) => /: batch \d+ took/.test(l)).length;
      if (seen >= batches && !sent) {
        sent = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve(signal === 'SIGKILL'));
  });
}
