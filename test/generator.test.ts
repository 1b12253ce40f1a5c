// The event generator: deterministic, lazy, unique ids, realistic and valid for its provider.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateEvents, generateNdjson } from '../src/generate/generator.js';
import { canonicalPhone } from '../src/identity.js';
import { getProvider, providerNames } from '../src/providers/index.js';
import { identityKey } from '../src/identity.js';

const USER = '11111111-1111-4111-8111-111111111111';
const take = <T>(it: Iterable<T>, n: number): T[] => {
  const out: T[] = [];
  for (const x of it) {
    if (out.length >= n) break;
    out.push(x);
  }
  return out;
};

describe('generateEvents', () => {
  for (const name of providerNames) {
    it(`${name}: the same seed gives the same events; another seed others`, () => {
      const a = [...generateNdjson(name, 300, { seed: 7, userId: USER })];
      const b = [...generateNdjson(name, 300, { seed: 7, userId: USER })];
      const c = [...generateNdjson(name, 300, { seed: 8, userId: USER })];
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
      assert.equal(a.length, 300);
      assert.deepEqual(
        a.map((l) => JSON.parse(l) as unknown),
        [...generateEvents(name, 300, { seed: 7, userId: USER })],
      );
    });

    it(`${name}: unique ids over 20,000 events, valid payloads, realistic sizes, repeating contacts`, () => {
      const provider = getProvider(name);
      const ids = new Set<string>();
      const contacts = new Set<string>();
      let bytes = 0;
      let interactions = 0;
      let previous = 0;
      const n = 20_000;
      for (const payload of generateEvents(name, n, { seed: 99, userId: USER, contacts: 25 })) {
        const { sourceId, occurredAt } = provider.identify(payload);
        ids.add(sourceId);
        bytes += Buffer.byteLength(JSON.stringify(payload));
        const result = provider.normalize({
          id: 'r',
          userId: USER,
          provider: name,
          sourceId,
          occurredAt: occurredAt ?? new Date(),
          payload,
        });
        if (result.kind !== 'interactions') continue;
        for (const i of result.interactions) {
          interactions++;
          if (occurredAt !== null) {
            // Webhooks carry no time (they get the import's): only payload times are ordered.
            assert.ok(i.occurredAt.getTime() >= previous, 'time moves forward');
            previous = i.occurredAt.getTime();
          }
          const counterpart = i.sourceMeta.direction === 'inbound' ? i.sourceMeta.from : i.sourceMeta.to;
          assert.ok(counterpart.length > 0, `no counterpart identity in ${JSON.stringify(i.sourceMeta)}`);
          for (const id of counterpart) contacts.add(identityKey(id));
        }
      }
      assert.equal(ids.size, n, 'every event has its own id');
      assert.ok(interactions >= n * 0.85, `${interactions} interactions`);
      const average = bytes / n;
      assert.ok(average >= 250 && average <= 2_500, `average payload ${Math.round(average)} bytes`);
      // 25 contacts, each with up to two identities (webform: email and phone).
      assert.ok(contacts.size >= 10 && contacts.size <= 50, `${contacts.size} distinct counterparts`);
    });
  }

  it('is lazy: a billion events cost nothing until read', () => {
    const started = process.hrtime.bigint();
    const first = take(generateEvents('gmail', 1e9, { seed: 1, userId: USER }), 3);
    assert.equal(first.length, 3);
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 1_000);
  });

  it('starts at the given time and belongs to the given user', () => {
    const [first] = take(generateEvents('webform', 1, { seed: 1, userId: USER, start: '2030-01-01T00:00:00Z' }), 1);
    const i = getProvider('webform').normalize({
      id: 'r',
      userId: USER,
      provider: 'webform',
      sourceId: null,
      occurredAt: null,
      payload: first,
    });
    assert.equal(i.kind, 'interactions');
    const at = i.kind === 'interactions' ? (i.interactions[0]?.occurredAt.getTime() ?? 0) : 0;
    assert.ok(at > Date.parse('2030-01-01T00:00:00Z') && at < Date.parse('2030-01-01T01:00:00Z'));
    const mail = (userId: string) => JSON.stringify(take(generateEvents('gmail', 1, { seed: 1, userId }), 1));
    assert.notEqual(mail(USER), mail('22222222-2222-4222-8222-222222222222'), 'the mailbox owner depends on the user');
  });

  it('uses only phone numbers libphonenumber accepts', () => {
    for (const payload of generateEvents('twilio', 500, { seed: 3, userId: USER })) {
      const p = payload as Record<string, unknown>;
      for (const key of ['From', 'To', 'from', 'to'])
        if (typeof p[key] === 'string') assert.ok(canonicalPhone(p[key]), `${key}: ${String(p[key])}`);
    }
  });

  it('refuses an unknown provider', () => {
    assert.throws(() => take(generateEvents('myspace', 1, { seed: 1, userId: USER }), 1), /no generator for provider "myspace"/);
  });
});
