// errors list, groups and show through the real binary: 1,000 dead letters of 5 causes (their
// numbers, ids, emails and quoted values varying) make exactly 5 groups; keyset pages return every
// letter once; show marks the payload path a validation issue names; bad flags exit 2.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { markPayload } from '../src/dead-letters/payload-mark.js';
import { packageRoot } from '../src/paths.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';
import { loadEvents } from './support/events.js';

const LETTERS = 1000;
const USERS = 7;

/**
 * 1,000 normalize letters in one statement: letter g has cause g % 5, user g % 7, its own raw
 * event, and a last_seen g % 97 minutes back, so many share a time (the keyset's id breaks ties).
 */
const SEED = `
INSERT INTO public.raw_event_errors (raw_event_id, user_id, provider, stage, error, context, error_at, first_seen, last_seen)
SELECT gen_random_uuid(),
       ('00000000-0000-4000-8000-' || lpad((g % ${USERS})::text, 12, '0'))::uuid,
       (ARRAY['webform', 'gmail', 'twilio', 'instagram', 'webform'])[1 + g % 5],
       'normalize',
       CASE g % 5
         WHEN 0 THEN format('invalid web form submission: payload.submitted_at has no UTC offset: "2024-10-%s"', g)
         WHEN 1 THEN format('invalid Gmail message: payload.internalDate expected a string, got number %s', g * 7)
         WHEN 2 THEN format('contact user%s@example.com not found for message %s', g, md5(g::text))
         WHEN 3 THEN format('instagram item %s refused: key %s too long', gen_random_uuid(), g)
         ELSE format('invalid web form submission: payload.fields expected an object, got ''a=%s''', g)
       END,
       jsonb_build_object('raw_event_id', gen_random_uuid(), 'source_id', 'src-' || g, 'issues', '[]'::jsonb),
       t, t - interval '1 day', t
FROM generate_series(1, ${LETTERS}) AS g
CROSS JOIN LATERAL (SELECT now() - (g % 97) * interval '1 minute' AS t) x`;

interface Page {
  errors: { id: string; last_seen: string }[];
  next: string | null;
}

describe('errors list, groups, show', () => {
  let target: TestTarget;
  const cli = (...args: string[]) => runCli([...target.args, ...args]);

  before(async () => {
    target = await migratedTarget();
    const db = await target.open();
    try {
      await db.query(SEED);
      const invalid = JSON.parse(fs.readFileSync(path.join(packageRoot, 'fixtures/webform/invalid/date-without-offset.json'), 'utf8'));
      await loadEvents(db, 'webform', [invalid]);
    } finally {
      await db.close();
    }
    const r = await cli('normalize', '--no-progress');
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => target.drop());

  it('groups 1,000 letters of 5 causes into exactly 5 groups with their counts and users', async () => {
    const r = await cli('--json', 'errors', 'groups', '--stage', 'normalize', '--since', '1d');
    assert.equal(r.code, 0, r.stderr);
    const { groups, total } = r.json<{ groups: { count: number; users: number; daily: number[]; pattern: string }[]; total: number }>();
    const seeded = groups.filter((g) => g.count === LETTERS / 5);
    assert.equal(seeded.length, 5, JSON.stringify(groups, null, 2));
    assert.equal(total, 6, 'the five causes and the fixture event');
    for (const g of seeded) {
      assert.equal(g.users, USERS);
      assert.equal(g.daily.length, 14);
      assert.equal(
        g.daily.reduce((a, b) => a + b, 0),
        g.count,
      );
    }
    assert.ok(seeded.some((g) => g.pattern === 'contact <email> not found for message <id>'));
    const text = await cli('errors', 'groups');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /normalize webform +200 +7 /);
  });

  it('pages through every letter exactly once, newest first, with cursors and with ids', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    let last = Number.POSITIVE_INFINITY;
    for (let n = 0; n < 20; n++) {
      const r = await cli('--json', 'errors', 'list', '--limit', '300', ...(next ? ['--after', next] : []));
      assert.equal(r.code, 0, r.stderr);
      const page = r.json<Page>();
      for (const e of page.errors) {
        const at = Date.parse(e.last_seen);
        assert.ok(at <= last, 'newest first');
        last = at;
        seen.push(e.id);
      }
      next = page.next;
      if (!next) break;
    }
    assert.equal(seen.length, LETTERS + 1);
    assert.equal(new Set(seen).size, LETTERS + 1, 'no letter twice');
    const byId = await cli('--json', 'errors', 'list', '--limit', '3', '--after', seen[299]!);
    assert.equal(byId.code, 0, byId.stderr);
    assert.deepEqual(
      byId.json<Page>().errors.map((e) => e.id),
      seen.slice(300, 303),
    );
    const filtered = await cli('--json', 'errors', 'list', '--provider', 'gmail', '--user', '00000000-0000-4000-8000-000000000003');
    assert.equal(filtered.code, 0, filtered.stderr);
    const expected = Array.from({ length: LETTERS }, (_, i) => i + 1).filter((g) => g % 5 === 1 && g % USERS === 3).length;
    assert.equal(filtered.json<Page>().errors.length, expected);
  });

  it('shows a letter whole with the failing path of its payload marked', async () => {
    const list = await cli('--json', 'errors', 'list', '--provider', 'webform', '--since', '1h', '--limit', '1000');
    const page = list.json<{ errors: { id: string; source_id: string | null }[] }>();
    const letter = page.errors.find((e) => !e.source_id?.startsWith('src-'));
    assert.ok(letter, 'the fixture event was dead-lettered');
    const r = await cli('errors', 'show', letter.id);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^> +"submitted_at": "[^"]+" +◀ .*offset/m, r.stdout);
    assert.match(r.stdout, /normalize: dead-lettered/);
    const json = await cli('--json', 'errors', 'show', letter.id);
    const doc = json.json<{ issues: { path: string }[]; status: string; attempts: number; payload: unknown; trace: unknown }>();
    assert.equal(doc.issues[0]?.path, 'payload.submitted_at');
    assert.equal(doc.status, 'open');
    assert.equal(doc.attempts, 1);
    assert.ok(doc.payload && doc.trace);
  });

  it('reports open dead letters in stats and warns in doctor when they grew', async () => {
    const stats = await cli('--json', 'stats');
    assert.equal(stats.code, 0, stats.stderr);
    const s = stats.json<{ deadLetters: { byStage: { stage: string; open: number }[]; topSignatures: unknown[] } }>();
    assert.deepEqual(s.deadLetters.byStage, [{ stage: 'normalize', open: LETTERS + 1 }]);
    assert.equal(s.deadLetters.topSignatures.length, 5);
    const doctor = await cli('--json', 'doctor');
    const finding = doctor.json<{ findings: { name: string; warn?: boolean }[] }>().findings.find((f) => f.name === 'dead letters');
    assert.equal(finding?.warn, true, doctor.stdout);
  });

  it('exits 2 on bad flags and unknown ids', async () => {
    for (const args of [
      ['errors', 'list', '--limit', '0'],
      ['errors', 'list', '--after', 'yesterday'],
      ['errors', 'list', '--status', 'closed'],
      ['errors', 'groups', '--stage', 'parse'],
      ['errors', 'groups', '--signature', 'xyz'],
      ['errors', 'groups', '--since', 'last week'],
      ['errors', 'show', 'not-a-uuid'],
      ['errors', 'show', '00000000-0000-4000-8000-00000000abcd'],
      ['errors', 'list', '--bogus'],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, args.join(' '));
    }
  });
});

describe('markPayload', () => {
  it('marks a nested path, a key with an odd name, and where a missing key should have been', () => {
    const payload = { entry: [{ messaging: [{ timestamp: 'soon' }] }], 'odd key': 1, fields: { name: 'x' } };
    const { lines, placed } = markPayload(payload, [
      { path: 'payload.entry[0].messaging[0].timestamp', message: 'expected a number' },
      { path: 'payload["odd key"]', message: 'unexpected' },
      { path: 'payload.fields.email', message: 'is missing' },
      { path: 'occurred_at', message: 'not in the payload' },
    ]);
    assert.equal(placed, 3);
    const marked = lines.filter((l) => l.startsWith('>')).map((l) => l.trim());
    assert.deepEqual(marked, [
      '>           "timestamp": "soon"   ◀ expected a number',
      '>   "odd key": 1,   ◀ unexpected',
      '>     "email": (missing)   ◀ is missing',
    ]);
  });
});
