// Chunking against js-tiktoken itself: the chunker tokenizes with its own BPE and cuts the text's
// bytes, where it used js-tiktoken's encode and decode. On random text (multi-byte characters,
// emoji, CJK, special-token strings, long words, byte-order marks, lone surrogates) its chunks
// must be exactly those of the same windowing done with js-tiktoken.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import { type Chunk, chunkText, encode, sha256Hex } from '../src/embed/chunk.js';

const cl100k = createRequire(import.meta.url)('js-tiktoken/ranks/cl100k_base') as TiktokenBPE;
const tiktoken = new Tiktoken(cl100k);

/** Each token's first byte, read from the ranks' base64 as the chunker did before. */
const firstByte = (() => {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const out = new Uint8Array(Math.max(...Object.values(cl100k.special_tokens)) + 1).fill(0x20);
  for (const line of cl100k.bpe_ranks.split('\n')) {
    const parts = line.split(' ');
    for (let i = 2; i < parts.length; i++)
      out[Number(parts[1]) + i - 2] = (B64.indexOf(parts[i]![0]!) << 2) | (B64.indexOf(parts[i]![1]!) >> 4);
  }
  return out;
})();

const first = (t: number | undefined) => (t === undefined ? undefined : firstByte[t]);
const boundary = (tokens: number[], i: number) => i <= 0 || i >= tokens.length || ((first(tokens[i]) ?? 0x20) & 0xc0) !== 0x80;
const line = (t: number | undefined) => first(t) === 0x0a;
const word = (t: number | undefined) => first(t) === 0x20 || first(t) === 0x0a || first(t) === 0x09;

function cutBefore(tokens: number[], lo: number, wanted: number): number {
  const hi = Math.max(lo + 1, wanted);
  const floor = Math.max(lo + 1, hi - 64);
  for (const prefer of [line, word]) for (let i = hi; i >= floor; i--) if (prefer(tokens[i]) && boundary(tokens, i)) return i;
  for (let i = hi; i > lo; i--) if (boundary(tokens, i)) return i;
  return hi;
}

function startNear(tokens: number[], at: number, limit: number): number {
  for (let i = at; i < Math.min(at + 16, limit); i++) if (word(tokens[i]) && boundary(tokens, i)) return i;
  for (let i = at; i < limit; i++) if (boundary(tokens, i)) return i;
  return limit;
}

/** The windowing of src/embed/chunk.ts as it was, on js-tiktoken's encode and decode. */
function referenceChunks(text: string, maxTokens: number, overlap: number): Chunk[] {
  if (text.trim() === '') return [];
  const count = (s: string) => tiktoken.encode(s, [], []).length;
  const tokens = tiktoken.encode(text, [], []);
  const chunks: Chunk[] = [];
  const push = (t: string, n: number) => {
    if (t.trim() !== '') chunks.push({ index: chunks.length, text: t, hash: sha256Hex(t), tokens: n });
  };
  if (tokens.length <= maxTokens) {
    push(text, tokens.length);
    return chunks;
  }
  let start = 0;
  while (start < tokens.length) {
    let end = tokens.length <= start + maxTokens ? tokens.length : cutBefore(tokens, start, start + maxTokens);
    let piece = tiktoken.decode(tokens.slice(start, end));
    let n = count(piece);
    while (n > maxTokens) {
      end = cutBefore(tokens, start, end - (n - maxTokens));
      piece = tiktoken.decode(tokens.slice(start, end));
      n = count(piece);
    }
    push(piece, n);
    if (end >= tokens.length) break;
    start = startNear(tokens, Math.max(end - overlap, start + 1), end);
  }
  return chunks;
}

const fragment = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '<|endoftext|>',
    '<|fim_prefix|>',
    '<|endofprompt|>',
    '🇮🇹',
    '👩‍👩‍👧',
    '🚀📬',
    '价格会议',
    '東京で',
    'Grüße',
    'x\u0301\u0301',
    '\ufeff',
    '\ud800',
    '\udc00x',
    ' \u00a0 \u2003 ',
    '\r\n\r\n',
    '\n\n',
    '\t',
    "it's they'RE",
    '2025-06-01 €1,200.50',
  ),
  fc.tuple(fc.constantFrom('a', 'é', '价', '🚀', 'ab1', 'Zz'), fc.integer({ min: 20, max: 200 })).map(([s, n]) => s.repeat(n)),
  fc.constantFrom('pricing', 'the', 'contract', 'renewal', 'Sofia', ' ', ' and ', '. '),
);
const texts = fc.array(fragment, { maxLength: 60 }).map((parts) => parts.join(''));

describe('chunkText against js-tiktoken', () => {
  it('encode gives js-tiktoken’s tokens on random text', () => {
    fc.assert(
      fc.property(texts, (text) => {
        assert.deepEqual(encode(text), tiktoken.encode(text, [], []));
      }),
      { numRuns: 400, seed: 13 },
    );
  });

  it('encode gives js-tiktoken’s tokens on long words (one piece each, merged through the heap)', () => {
    const letters = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzQXZéü价格🚀'.split(/(?:)/u));
    // Runs of one letter too: equal pairs side by side are where the leftmost must win.
    const run = fc.tuple(letters, fc.integer({ min: 1, max: 12 })).map(([c, k]) => c.repeat(k));
    const word = fc.array(fc.oneof(letters, run), { minLength: 32, maxLength: 400 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(word, (text) => {
        assert.deepEqual(encode(text), tiktoken.encode(text, [], []));
      }),
      { numRuns: 80, seed: 13 },
    );
  });

  it('chunks (text, hash, tokens) are those of the windowing on js-tiktoken’s encode and decode', () => {
    fc.assert(
      fc.property(texts, fc.integer({ min: 16, max: 96 }), fc.integer({ min: 0, max: 8 }), (text, maxTokens, overlap) => {
        assert.deepEqual(chunkText(text, { maxTokens, overlapTokens: overlap }), referenceChunks(text, maxTokens, overlap));
      }),
      { numRuns: 400, seed: 13 },
    );
  });

  it('a long text at the default sizes, with a byte-order mark where a window starts', () => {
    const text = Array.from(
      { length: 4000 },
      (_, i) => ['Grüße ', '价格会议 ', '🚀 ', 'pricing ', '\ufeffcontract ', '<|endoftext|> '][i % 6],
    ).join('');
    assert.deepEqual(chunkText(text), referenceChunks(text, 512, 64));
  });
});
