// The blind spots of `verify` that `migrate --adopt` relies on (issue 12, item 3): table
// privileges per role, the fingerprint trigger and values, and the tool's own queues and
// triggers. Each is broken on a migrated database and must fail its check, then restored.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import type { CheckResult } from '../src/verify/checks.js';
import { runChecks } from '../src/verify/run.js';
import { runCli } from './support/cli.js';
import { migratedDb, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';

const failed = (checks: CheckResult[]) => checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);

describe('verify catches what adopt relies on', () => {
  let db: Db;
  let target: TestTarget;
  let close: () => Promise<void>;

  /** Breaks the database, expects exactly these checks to fail (matching), then repairs it. */
  async function expectCaught(breakIt: string, repair: string, wanted: RegExp[], options?: Parameters<typeof runChecks>[1]) {
    await db.query(breakIt);
    try {
      const problems = failed(await runChecks(db, options));
      assert.equal(problems.length, wanted.length, problems.join('\n'));
      for (const w of wanted)
        assert.ok(
          problems.some((p) => w.test(p)),
          `${w} not in:\n${problems.join('\n')}`,
        );
    } finally {
      await db.query(repair);
    }
    assert.deepEqual(failed(await runChecks(db, options)), []);
  }

  before(async () => {
    ({ db, target, close } = await migratedDb());
    await db.query(
      `INSERT INTO public.ai_insights (user_id, subject_type, subject_id, kind, content, model)
SELECT $1, 'contact', gen_random_uuid(), 'summary', jsonb_build_object('title', 'T' || g), 'heuristic' FROM generate_series(1, 40) g`,
      [USER_A],
    );
  });
  after(async () => {
    await close();
  });

  it('passes on the migrated database, saying how many fingerprints it recomputed', async () => {
    const checks = await runChecks(db, { sample: 10 });
    assert.deepEqual(failed(checks), []);
    assert.match(
      checks.find((c) => c.name === 'ai_insights fingerprint values')?.detail ?? '',
      /a sample of 10 rows .*--thorough checks all/,
    );
    const all = await runChecks(db, { thorough: true });
    assert.match(all.find((c) => c.name === 'ai_insights fingerprint values')?.detail ?? '', /recomputed all 40 rows: all match/);
  });

  it("service_role's rights on raw_events revoked", async () => {
    await expectCaught('REVOKE ALL ON public.raw_events FROM service_role', 'GRANT ALL ON public.raw_events TO service_role', [
      /table privileges of service_role: lacks raw_events \(SELECT, INSERT, UPDATE, DELETE\)/,
    ]);
  });

  it('select granted to anon', async () => {
    await expectCaught('GRANT SELECT ON public.raw_events TO anon', 'REVOKE SELECT ON public.raw_events FROM anon', [
      /table privileges of anon: must not have raw_events \(SELECT\)/,
    ]);
  });

  it('authenticated may update or lacks the insert of notes', async () => {
    await expectCaught('GRANT UPDATE ON public.contacts TO authenticated', 'REVOKE UPDATE ON public.contacts FROM authenticated', [
      /table privileges of authenticated: must not have contacts \(UPDATE\)/,
    ]);
    await expectCaught('REVOKE INSERT ON public.interactions FROM authenticated', 'GRANT INSERT ON public.interactions TO authenticated', [
      /table privileges of authenticated: lacks interactions \(INSERT\)/,
    ]);
  });

  it('every fingerprint corrupted with the trigger disabled: both the trigger and the values fail, sampled or thorough', async () => {
    const corrupt = `ALTER TABLE public.ai_insights DISABLE TRIGGER ai_insights_fingerprint_trg;
UPDATE public.ai_insights SET fingerprint = md5(id::text)`;
    const repair = `ALTER TABLE public.ai_insights ENABLE TRIGGER ai_insights_fingerprint_trg;
UPDATE public.ai_insights SET kind = kind`;
    await expectCaught(
      corrupt,
      repair,
      [
        /fingerprint trigger: ai_insights_fingerprint_trg is disabled/,
        /fingerprint values: recomputed a sample of 10 rows .*: 10 do not match/,
      ],
      { sample: 10 },
    );
    await expectCaught(
      corrupt,
      repair,
      [/fingerprint trigger: .*disabled/, /fingerprint values: recomputed all 40 rows: 40 do not match/],
      {
        thorough: true,
      },
    );
  });

  it("omni-ingest's queue trigger disabled, or a queue dropped", async () => {
    await expectCaught(
      'ALTER TABLE public.raw_events DISABLE TRIGGER raw_events_enqueue_normalize',
      'ALTER TABLE public.raw_events ENABLE TRIGGER raw_events_enqueue_normalize',
      [/queue triggers: disabled: raw_events_enqueue_normalize on public.raw_events/],
    );
    await expectCaught(
      'ALTER TABLE omni_ingest.pipeline_contacts RENAME TO pipeline_contacts_gone',
      'ALTER TABLE omni_ingest.pipeline_contacts_gone RENAME TO pipeline_contacts',
      [/omni-ingest's tables: missing: omni_ingest.pipeline_contacts/],
    );
  });

  it('the CLI exits 3 on any of them and takes --thorough and --sample', async () => {
    await db.query('GRANT SELECT ON public.contacts TO anon');
    await db.close(); // the embedded database: one process at a time
    try {
      const r = await runCli([...target.args, 'verify', '--thorough', '--json']);
      assert.equal(r.code, 3, r.stderr);
      const body = r.json<{ checks: CheckResult[] }>();
      assert.deepEqual(
        body.checks.filter((c) => !c.ok).map((c) => c.name),
        ['table privileges of anon'],
      );
      const bad = await runCli([...target.args, 'verify', '--sample', '0']);
      assert.equal(bad.code, 2);
    } finally {
      db = await target.open();
      await db.query('REVOKE SELECT ON public.contacts FROM anon');
    }
  });
});
