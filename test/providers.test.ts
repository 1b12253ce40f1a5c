// What all providers share: the registry, text cleaning, error messages, time parsing, and the
// demo fixtures every provider must normalize.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../src/errors.js';
import { packageRoot } from '../src/paths.js';
import { formatPath, parsePayload, payloadErrorFrom } from '../src/providers/common.js';
import { fromEpochMs, parseIsoWithOffset, parseRfc2822 } from '../src/providers/dates.js';
import { getProvider, providerNames, providers } from '../src/providers/index.js';
import { PayloadError } from '../src/providers/types.js';
import { cleanJson, cleanText, cleanTextOrNull, decodeEntities, htmlToText, jsonSafe } from '../src/text.js';
import { z } from 'zod';

describe('provider registry', () => {
  it('knows the four providers by name', () => {
    assert.deepEqual(providerNames, ['gmail', 'instagram', 'twilio', 'webform']);
    for (const name of providerNames) assert.equal(providers[name]?.name, name);
    assert.equal(getProvider('gmail'), providers.gmail);
  });

  it('refuses an unknown name with a usage error listing the known ones', () => {
    assert.throws(
      () => getProvider('myspace'),
      (e: unknown) =>
        e instanceof UsageError &&
        e.exitCode === 2 &&
        /unknown provider "myspace"; known providers: gmail, instagram, twilio, webform/.test(e.message),
    );
    assert.throws(() => getProvider('toString'), UsageError, 'no prototype keys');
  });
});

describe('text', () => {
  it('cleanText: valid UTF-16, no NUL, \\n line ends, trimmed, Unicode kept', () => {
    assert.equal(cleanText('  a\u0000b\r\nc\rd\n  '), 'ab\nc\nd');
    assert.equal(cleanText('x\ud800y\udc00z'), 'x\ufffdy\ufffdz');
    assert.equal(cleanText('👋 Grüße — 你好\tok'), '👋 Grüße — 你好\tok');
    assert.equal(cleanTextOrNull(' \u0000 '), null);
    assert.equal(cleanTextOrNull(undefined), null);
  });

  it('cleanJson: a deep copy with NUL and lone surrogates gone from keys and values', () => {
    const input = {
      'k\u0000ey': ['a\u0000', { n: 1, bad: '\udfff', ok: true, none: null, skip: undefined }],
      d: new Date('2024-01-01T00:00:00Z'),
      inf: Infinity,
    };
    const out = cleanJson(input);
    assert.deepEqual(out, { key: ['a', { n: 1, bad: '\ufffd', ok: true, none: null }], d: '2024-01-01T00:00:00.000Z', inf: null });
    assert.equal(input['k\u0000ey'][0], 'a\u0000', 'the input is untouched');
  });

  it('jsonSafe: the same object when clean, a cleaned copy when not', () => {
    const clean = { a: ['b', { c: '👋' }] };
    assert.equal(jsonSafe(clean), clean);
    const dirty = { a: ['b', { c: 'x\u0000' }] };
    assert.deepEqual(jsonSafe(dirty), { a: ['b', { c: 'x' }] });
    assert.notEqual(jsonSafe(dirty), dirty);
    const dirtyKey = { a: { 'k\ud800': 1 } };
    assert.notEqual(jsonSafe(dirtyKey), dirtyKey);
    // Only own keys count, as JSON.stringify sees them: an inherited one is never written.
    const inherits = Object.create({ inherited: 'x\u0000' }) as Record<string, unknown>;
    inherits.own = 'y';
    assert.equal(jsonSafe(inherits), inherits);
  });

  it('htmlToText: readable text, no link targets, no wrapping, no scripts', () => {
    const long = 'word '.repeat(40).trim();
    assert.equal(
      htmlToText(
        `<html><head><style>p{}</style></head><body><h2>Hello</h2><p>${long}</p><p>See <a href="https://t.example/x?utm=1">the offer</a>.</p><script>x()</script></body></html>`,
      ),
      `Hello\n\n${long}\n\nSee the offer.`,
    );
  });

  it('decodeEntities: the entities Gmail snippets use', () => {
    assert.equal(
      decodeEntities('a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; &#x1F600; &unknown; &#0;'),
      'a & b <c> "d" \'e\' 😀 &unknown; \ufffd',
    );
  });
});

describe('error messages', () => {
  it('paths are written the way the payload is', () => {
    assert.equal(formatPath(['payload', 'parts', 1, 'body', 'data']), 'payload.payload.parts[1].body.data');
    assert.equal(formatPath(['fields', 'Phone Number']), 'payload.fields["Phone Number"]');
    assert.equal(formatPath([]), 'payload');
  });

  it('name the first problem and count the others', () => {
    const schema = z.object({ a: z.string(), b: z.number(), c: z.boolean() });
    assert.throws(
      () => parsePayload(schema, { b: 'x', c: 1 }, 'test thing'),
      (e: unknown) => {
        assert.ok(e instanceof PayloadError);
        assert.equal(e.message, 'invalid test thing: payload.a is missing (expected a string) (and 2 more problems)');
        assert.deepEqual(
          e.issues.map((i) => i.path),
          ['payload.a', 'payload.b', 'payload.c'],
        );
        return true;
      },
    );
    assert.equal(
      payloadErrorFrom('x', [
        { path: 'payload.a', message: 'bad' },
        { path: 'payload.b', message: 'bad' },
      ]).message,
      'invalid x: payload.a bad (and 1 more problem)',
    );
  });

  it('never quote a whole body', () => {
    const schema = z.object({ a: z.number() });
    assert.throws(
      () => parsePayload(schema, { a: 'x'.repeat(10_000) }, 't'),
      (e: unknown) => e instanceof Error && e.message.length < 200 && /\(10000 characters\)/.test(e.message),
    );
  });
});

describe('time parsing', () => {
  it('RFC 2822 with numeric or named zones', () => {
    const iso = (s: string) => {
      const r = parseRfc2822(s);
      return r.ok ? r.date.toISOString() : r.problem;
    };
    assert.equal(iso('Thu, 24 Aug 2023 05:01:45 +0000'), '2023-08-24T05:01:45.000Z');
    assert.equal(iso('24 Aug 2023 07:01 +0200'), '2023-08-24T05:01:00.000Z');
    assert.equal(iso('Thu, 24 Aug 2023 01:01:45 EDT'), '2023-08-24T05:01:45.000Z');
    assert.match(iso('Thu, 31 Feb 2023 05:01:45 +0000'), /not a valid date-time/);
    assert.match(iso('Thu, 24 Aug 2023 05:01:45'), /not an RFC 2822 date/);
    assert.match(iso('2023-08-24T05:01:45Z'), /not an RFC 2822 date/);
  });

  it('ISO 8601 requires an offset', () => {
    assert.equal(parseIsoWithOffset('2024-02-29T23:00:00-01:00').ok, true);
    assert.equal(parseIsoWithOffset('2023-02-29T23:00:00Z').ok, false);
    const r = parseIsoWithOffset('2024-02-29T23:00:00');
    assert.ok(!r.ok && /no UTC offset/.test(r.problem));
  });

  it('epoch milliseconds, refusing seconds and the absurd', () => {
    assert.equal((fromEpochMs('1725347647000') as { date: Date }).date.toISOString(), '2024-09-03T07:14:07.000Z');
    assert.equal(fromEpochMs(1725347647).ok, false);
    assert.equal(fromEpochMs(-1).ok, false);
    assert.equal(fromEpochMs('17e11').ok, false);
    assert.equal(fromEpochMs(9e15).ok, false);
  });
});

describe('demo fixtures', () => {
  const demo = path.join(packageRoot, 'fixtures', 'demo');
  for (const name of providerNames) {
    it(`${name}.ndjson: 10–30 events that import and normalize without a dead letter`, () => {
      const lines = fs
        .readFileSync(path.join(demo, `${name}.ndjson`), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '');
      assert.ok(lines.length >= 10 && lines.length <= 30, `${lines.length} lines`);
      const provider = getProvider(name);
      const ids = new Set<string>();
      let interactions = 0;
      for (const line of lines) {
        const payload = JSON.parse(line) as unknown;
        const { sourceId, occurredAt } = provider.identify(payload);
        ids.add(sourceId);
        const result = provider.normalize({
          id: 'r',
          userId: '11111111-1111-4111-8111-111111111111',
          provider: name,
          sourceId,
          occurredAt: occurredAt ?? new Date(),
          payload,
        });
        if (result.kind === 'interactions') interactions += result.interactions.length;
      }
      assert.equal(ids.size, lines.length, 'unique ids');
      assert.ok(interactions >= lines.length * 0.8, `${interactions} interactions from ${lines.length} events`);
    });
  }
});
