// backfill through the binary over the bundled fixtures: every table's contents, a second run
// that changes nothing, and a run killed mid-way that ends in the same state when re-run.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { killAfterBatches, runCli } from './support/cli.js';
import { cloneTarget, migratedTarget, type TestTarget } from './support/db.js';
import { snapshot } from './support/tables.js';

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
async function killAfter(target: TestTarget, batches: number): Promise<boolean> {
  const args = [...target.args, 'backfill', '--since', '2000-01-01', '--batch-size', '3', ...OFFLINE];
  return (await killAfterBatches(args, batches, 0, { OPENAI_API_KEY: '' })).killed;
}
