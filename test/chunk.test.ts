// Chunking: token limits, valid text at every cut, overlap, stable hashes, edits stay local.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { chunkText, countTokens, encode, interactionText, MODEL_INPUT_LIMIT, sha256Hex } from '../src/embed/chunk.js';
import { packageRoot } from '../src/paths.js';

/** Deterministic prose of about `words` words (a small LCG, no Math.random). */
export function prose(words: number, seed = 1): string {
  const vocab = [
    'pricing',
    'meeting',
    'the',
    'contract',
    'renewal',
    'we',
    'discussed',
    'Sofia',
    'quarterly',
    'numbers',
    'and',
    'a',
    'follow-up',
    'call',
    'on',
    'Tuesday,',
    'invoice',
    'attached.',
    'Thanks!',
    'regards',
    'budget',
    'approval',
    'next',
    'steps:',
    'onboarding',
    'team',
    'in',
    'Milan',
    '2025-06-01',
    '€1,200',
  ];
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(vocab[x % vocab.length]!);
    if (i % 97 === 96) out.push('\n\n');
  }
  return out.join(' ');
}

describe('interactionText', () => {
  it('joins subject and body with a blank line, or takes either alone', () => {
    assert.equal(interactionText('Re: pricing', 'Sounds good.'), 'Re: pricing\n\nSounds good.');
    assert.equal(interactionText(null, 'Only a body'), 'Only a body');
    assert.equal(interactionText('Only a subject', '  '), 'Only a subject');
    assert.equal(interactionText(null, null), '');
    assert.equal(interactionText(' ', ''), '');
  });
});

describe('encode', () => {
  it('gives exactly the tokens of js-tiktoken itself (it only remembers each piece)', () => {
    const reference = new Tiktoken(createRequire(import.meta.url)('js-tiktoken/ranks/cl100k_base') as TiktokenBPE);
    const fixtures = path.join(packageRoot, 'fixtures');
    const texts = [
      '  hello   world  \n\n\n  x',
      "it's they're I'LL we've",
      '123456789 1,234.56 2025-06-01T10:00:00Z',
      '🇮🇹🚀 价格会议 Grüße 東京で',
      '\t\t\r\n\r\n  ',
      'a'.repeat(300),
      '<|endoftext|> <|fim_prefix|>',
      ' \u00a0 \u2003 x',
      'x\u0301\u0301',
      prose(2000, 3),
      ...fs
        .readdirSync(fixtures, { recursive: true })
        .map(String)
        .filter((f) => /\.(json|ndjson)$/.test(f))
        .map((f) => fs.readFileSync(path.join(fixtures, f), 'utf8')),
    ];
    let tokens = 0;
    for (const text of texts) {
      const expected = reference.encode(text, [], []);
      assert.deepEqual(encode(text), expected);
      assert.deepEqual(encode(text), expected, 'again, from the cache');
      tokens += expected.length;
    }
    assert.ok(tokens > 10_000, `${tokens} tokens compared`);
  });
});

describe('chunkText', () => {
  it('a short text is one chunk: itself, its SHA-256, index 0', () => {
    const chunks = chunkText('Hello Sofia, see you on Tuesday.');
    assert.equal(chunks.length, 1);
    assert.deepEqual(chunks[0], {
      index: 0,
      text: 'Hello Sofia, see you on Tuesday.',
      hash: sha256Hex('Hello Sofia, see you on Tuesday.'),
      tokens: countTokens('Hello Sofia, see you on Tuesday.'),
    });
    assert.match(chunks[0]!.hash, /^[0-9a-f]{64}$/);
  });

  it('nothing for empty or blank text', () => {
    assert.deepEqual(chunkText(''), []);
    assert.deepEqual(chunkText(' \n\t '), []);
  });

  it('a 20,000-token body: every chunk within 512 tokens, in order, overlapping, covering the text', () => {
    const text = prose(16_000);
    const total = countTokens(text);
    assert.ok(total >= 20_000, `only ${total} tokens`);
    const chunks = chunkText(text);
    assert.ok(chunks.length >= Math.ceil(total / 512), `${chunks.length} chunks`);
    let from = 0;
    let covered = 0;
    chunks.forEach((c, i) => {
      assert.equal(c.index, i);
      assert.ok(c.tokens <= 512 && c.tokens <= MODEL_INPUT_LIMIT, `chunk ${i} has ${c.tokens} tokens`);
      assert.equal(countTokens(c.text), c.tokens, 'the count is the chunk on its own');
      assert.ok(c.tokens >= 400 || i === chunks.length - 1, `chunk ${i} is only ${c.tokens} tokens`);
      assert.equal(c.hash, sha256Hex(c.text));
      const at = text.indexOf(c.text, from);
      assert.ok(at >= 0, `chunk ${i} is not a piece of the text`);
      if (i > 0) assert.ok(at < covered, `chunk ${i} does not overlap the previous one`);
      from = at + 1;
      covered = at + c.text.length;
    });
    assert.equal(covered, text.length, 'the last chunk reaches the end');
  });

  it('never cuts inside a character: multi-byte text decodes cleanly', () => {
    const text = Array.from({ length: 3000 }, (_, i) => ['价格会议', '🚀📬', 'Grüße', '東京で', '🇮🇹'][i % 5]).join('');
    const chunks = chunkText(text, { maxTokens: 64, overlapTokens: 8 });
    assert.ok(chunks.length > 10);
    for (const c of chunks) {
      assert.ok(!c.text.includes('\ufffd'), 'no replacement character');
      assert.ok(text.includes(c.text));
      assert.ok(c.tokens <= 64);
    }
  });

  it('special-token strings are plain text', () => {
    const chunks = chunkText('the model said <|endoftext|> and stopped');
    assert.equal(chunks[0]!.text, 'the model said <|endoftext|> and stopped');
  });

  it('is deterministic, and an edit near the end leaves the earlier chunks as they were', () => {
    const text = prose(4000, 7);
    const a = chunkText(text);
    assert.deepEqual(chunkText(text), a);
    const edited = `${text.slice(0, text.length - 200)} EDITED ${text.slice(text.length - 200)}`;
    const b = chunkText(edited);
    const same = a.filter((c, i) => b[i]?.hash === c.hash).length;
    assert.ok(same >= a.length - 2, `${same} of ${a.length} chunks unchanged`);
    assert.notDeepEqual(
      b.map((c) => c.hash),
      a.map((c) => c.hash),
    );
  });

  it('refuses sizes above the model input limit', () => {
    assert.throws(() => chunkText('x', { maxTokens: MODEL_INPUT_LIMIT + 1 }), /between 16 and 8191/);
    assert.throws(() => chunkText('x', { maxTokens: 100, overlapTokens: 80 }), /overlap/);
  });
});
