// No secret leaves the process or reaches the database (issue 12, item 1): a provider that
// echoes the API key in its 401, 429, 500 and 400 answers, through retry warnings, --verbose
// lines, the run ledger, dead letters and --json output.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { secretsOf, resolveConfig } from '../src/config.js';
import { createOutput } from '../src/context.js';
import { createLogger } from '../src/logger.js';
import { clearSecrets, registerSecrets, scrub, scrubValue } from '../src/secrets.js';
import { systemClock } from '../src/clock.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { parseRange } from '../src/commands/flags.js';
import { runStage } from '../src/stages/engine/runner.js';
import { normalizeStage } from '../src/stages/normalize.js';
import * as embedBatchSql from '../src/stages/embed/batch-sql.js';
import { writeDeadLetters } from '../src/dead-letters/sql.js';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { runCli } from './support/cli.js';
import { migratedDb, onServer, type TestTarget } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';

const KEY = 'sk-proj-Secret/Key+With"Odd\\Chars-0123456789';
const AWS = 'aws-secret-AbCdEf0123456789';

/** A stream that keeps what is written to it. */
function sink(): NodeJS.WritableStream & { text: string; isTTY: boolean } {
  const s = {
    text: '',
    isTTY: false,
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WritableStream & { text: string; isTTY: boolean };
}

describe('the scrubber', () => {
  afterEach(() => clearSecrets());

  it('masks a secret as written, URL-encoded and JSON-escaped, in text and in every string of a value', () => {
    registerSecrets([KEY]);
    assert.equal(scrub(`key=${KEY}`), 'key=****');
    assert.equal(scrub(`https://proxy/?k=${encodeURIComponent(KEY)}`), 'https://proxy/?k=****');
    assert.equal(scrub(JSON.stringify({ k: KEY })), '{"k":"****"}');
    const value = { error: `Incorrect API key provided: ${KEY}`, nested: [{ [KEY]: 1, at: new Date(0) }], n: 3 };
    assert.deepEqual(scrubValue(value), { error: 'Incorrect API key provided: ****', nested: [{ '****': 1, at: new Date(0) }], n: 3 });
  });

  it('knows the API key, the database password (as written and decoded) and the S3 secret and session token', () => {
    const token = 'IQoJb3JpZ2luX2VjEXAMPLE-session-token';
    const env = {
      OPENAI_API_KEY: KEY,
      AWS_SECRET_ACCESS_KEY: AWS,
      AWS_SESSION_TOKEN: token,
      DATABASE_URL: 'postgres://u:p%40ss-word-1@db/x',
    };
    const secrets = secretsOf(resolveConfig({}, env), env);
    for (const s of [KEY, AWS, token, 'p%40ss-word-1', 'p@ss-word-1']) assert.ok(secrets.includes(s), s);
  });

  it('applies to log lines at every level and to the result, text or JSON', () => {
    registerSecrets([KEY, AWS]);
    const err = sink();
    const logger = createLogger({ quiet: false, verbose: true, color: false, stream: err });
    logger.debug(`debug ${KEY}`);
    logger.info(`info ${KEY}`);
    logger.warn(`warn ${AWS}`);
    logger.error(`error ${KEY}`);
    assert.ok(!err.text.includes(KEY) && !err.text.includes(AWS), err.text);
    assert.equal(err.text.split('****').length - 1, 4);
    for (const json of [true, false]) {
      const out = sink();
      createOutput(json, false, out).result({ error: `a ${KEY}` }, () => `error a ${KEY}`);
      assert.ok(!out.text.includes(KEY), out.text);
      assert.match(out.text, /\*\*\*\*/);
    }
  });
});

describe('what the tool keeps about its own batches', () => {
  afterEach(() => clearSecrets());

  it('stores an embed batch’s error with every secret masked', async () => {
    registerSecrets([KEY]);
    const { db, close } = await migratedDb();
    try {
      const id = randomUUID();
      await embedBatchSql.insertBatch(db, { id, provider: 'openai', model: 'm', dimensions: 1536, owner: 'o', seconds: 60, runId: null });
      await embedBatchSql.resetBatch(db, id, { itemIds: [], status: 'failed', error: `proxy refused ${KEY}` });
      const first = await db.query<{ error: string }>(`SELECT error FROM omni_ingest.embed_batches WHERE id = $1`, [id]);
      assert.equal(first.rows[0]?.error, 'proxy refused ****');
      await embedBatchSql.finishBatch(db, id, {
        state: 'failed',
        status: 'failed',
        outputFileId: null,
        errorFileId: null,
        error: `still ${KEY}`,
        runId: null,
      });
      const second = await db.query<{ error: string }>(`SELECT error FROM omni_ingest.embed_batches WHERE id = $1`, [id]);
      assert.equal(second.rows[0]?.error, 'still ****');
    } finally {
      await close();
    }
  });

  it('masks a dead letter’s messages but keeps the record and ids it is about as they came', async () => {
    // A password as short as `postgres` occurs in customers' data: the kept record is exported,
    // fixed and imported again, so masking it would import `****`.
    registerSecrets(['postgres', KEY]);
    const { db, close } = await migratedDb();
    try {
      const text = JSON.stringify({ email: 'dba@postgres.example', body: 'we run postgres 15' });
      await writeDeadLetters(db, [
        {
          stage: 'import',
          rawEventId: null,
          userId: USER_A,
          provider: 'webform',
          error: `refused: ${KEY} postgres`,
          context: {
            file: '/tmp/x.ndjson',
            line: 1,
            batch_id: null,
            kind: 'validation',
            source_id: 'postgres-42',
            issues: [{ path: 'email', message: `bad ${KEY}` }],
            record: { text, bytes: Buffer.byteLength(text), sha256: 'h', truncated: false },
          },
        },
      ]);
      const { rows } = await db.query<{ error: string; context: Record<string, unknown> }>(
        `SELECT error, context FROM public.raw_event_errors WHERE stage = 'import'`,
      );
      assert.equal(rows[0]?.error, 'refused: **** ****');
      const context = rows[0]!.context as { source_id: string; issues: { message: string }[]; record: { text: string } };
      assert.equal(context.record.text, text);
      assert.equal(context.source_id, 'postgres-42');
      assert.equal(context.issues[0]?.message, 'bad ****');
    } finally {
      await close();
    }
  });
});

describe('a provider that echoes the key in its errors', { timeout: 240_000 }, () => {
  let fake: FakeOpenAI;
  let target: TestTarget;
  const env = () => ({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: fake.url, AWS_SECRET_ACCESS_KEY: AWS });
  const leaks = (text: string) => [KEY, AWS, JSON.stringify(KEY).slice(1, -1), encodeURIComponent(KEY)].filter((s) => text.includes(s));

  before(async () => {
    fake = await startFakeOpenAI({ echoKey: true, rejectMarker: 'REJECT-ME' });
    const { db, target: t } = await migratedDb();
    target = t;
    try {
      await loadEvents(db, 'webform', generateEvents('webform', 6, { seed: 5, userId: USER_A }));
      await runStage(normalizeStage, { db, clock: systemClock, logger: createMemoryLogger(), range: parseRange({}, systemClock) });
      // One input the provider rejects (a 400 echoing the key): it becomes a dead letter.
      await db.query(`
UPDATE public.interactions SET body_text = body_text || ' REJECT-ME'
WHERE id = (SELECT id FROM public.interactions ORDER BY id LIMIT 1)`);
    } finally {
      await db.close();
    }
  });
  after(async () => {
    await fake.close();
    await target.drop();
  });

  it('429, 500 and 400 answers: retry warnings, --verbose lines, dead letters and --json hold no key', async () => {
    fake.options.rateLimit = { count: 1, retryAfterSeconds: 0.05 };
    fake.options.serverErrors = 1;
    const r = await runCli([...target.args, '--verbose', '--json', 'embed', '--embedder', 'openai', '--concurrency', '1'], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fake.stats.rateLimited >= 1 && fake.stats.serverErrors >= 1 && fake.stats.rejected >= 1, JSON.stringify(fake.stats));
    assert.match(r.stderr, /retry 1 of/);
    assert.match(r.stderr, /\*\*\*\*/, 'the echoed key is shown masked');
    assert.deepEqual(leaks(r.stdout + r.stderr), []);
    const db = await target.open();
    try {
      const { rows } = await db.query<{ error: string; context: unknown }>(
        `SELECT error, context FROM public.raw_event_errors WHERE stage = 'embed'`,
      );
      assert.ok(rows.length >= 1, 'the rejected input is a dead letter');
      assert.deepEqual(leaks(JSON.stringify(rows)), []);
      assert.match(JSON.stringify(rows), /\*\*\*\*/);
    } finally {
      await db.close();
    }
  });

  it('a 401: the failed run, the ledger, `runs show --json` and `runs list --json` hold no key', async () => {
    fake.options.unauthorized = 1_000;
    const db = await target.open();
    try {
      await db.query(`UPDATE public.interactions SET body_text = body_text || ' edited' WHERE body_text NOT LIKE '%REJECT-ME%'`);
    } finally {
      await db.close();
    }
    const r = await runCli([...target.args, '--verbose', 'embed', '--embedder', 'openai'], { env: env() });
    assert.notEqual(r.code, 0, r.stderr);
    assert.deepEqual(leaks(r.stdout + r.stderr), []);
    const check = await target.open();
    let runId: string;
    try {
      const { rows } = await check.query<{ id: string; error: string | null; args: unknown }>(
        `SELECT id, error, args FROM omni_ingest.runs WHERE command = 'embed' ORDER BY started_at DESC LIMIT 1`,
      );
      runId = rows[0]!.id;
      assert.match(rows[0]!.error ?? '', /\*\*\*\*/, 'the ledger says why, masked');
      assert.deepEqual(leaks(JSON.stringify(rows)), []);
    } finally {
      await check.close();
    }
    for (const args of [
      ['runs', 'show', runId],
      ['runs', 'list'],
    ]) {
      const shown = await runCli([...target.args, '--json', ...args], { env: env() });
      assert.equal(shown.code, 0, shown.stderr);
      assert.deepEqual(leaks(shown.stdout + shown.stderr), []);
    }
  });
});

describe('the database password', { skip: onServer ? false : 'needs a real server' }, () => {
  it('never appears in output, even where the URL is printed', async () => {
    const { target, close } = await migratedDb();
    try {
      const u = new URL(target.url!);
      u.password = 'db-Pass-9876543210'; // the test server trusts local connections: any password works
      const r = await runCli(['--database-url', u.toString(), '--verbose', 'doctor', '--json']);
      assert.ok(!(r.stdout + r.stderr).includes('db-Pass-9876543210'), r.stdout + r.stderr);
      assert.match(r.stdout, /\*\*\*\*@/);
    } finally {
      await close();
    }
  });
});
