// The offline embedder (the default when no OPENAI_API_KEY is set): deterministic, free, and
// LEXICAL. It hashes words and character trigrams into 1536 signed buckets (the "hashing trick")
// and L2-normalises the result, so texts sharing words and word fragments are close and nothing
// else is: no synonyms, no meaning, no languages bridged. Good for trying the pipeline end to end
// and for keyword-ish similarity; use the openai embedder for semantic search.
import { EXPECTED_DIMENSIONS, type EmbedResult, type Embedder } from './embedder.js';

export const LOCAL_MODEL = 'local-hashed-ngrams-v1';

/** 32-bit FNV-1a over UTF-16 code units, with a seed so two hashes per feature are independent. */
function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const WORD = /[\p{L}\p{N}]+/gu;

/** Words (weight 1) and the character trigrams of each word with its boundaries (weight 0.5). */
function features(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const add = (f: string, w: number) => out.set(f, (out.get(f) ?? 0) + w);
  for (const match of text.toLowerCase().normalize('NFKC').matchAll(WORD)) {
    const word = match[0];
    add(`w:${word}`, 1);
    const padded = `^${word}$`;
    for (let i = 0; i + 3 <= padded.length; i++) add(`g:${padded.slice(i, i + 3)}`, 0.5);
  }
  return out;
}

/** A unit vector for `text`; the same text always gives the same vector. */
export function localVector(text: string, dimensions = EXPECTED_DIMENSIONS): number[] {
  const v = new Float64Array(dimensions);
  const f = features(text);
  if (f.size === 0) f.set(`raw:${text}`, 1); // only punctuation: still a valid, deterministic vector
  for (const [feature, count] of f) {
    const h = fnv1a(feature, 0);
    const sign = fnv1a(feature, 0x9e3779b9) & 1 ? 1 : -1;
    // Sublinear term frequency: a word said ten times is not ten times as important.
    v[h % dimensions]! += sign * (1 + Math.log(count));
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += v[i]! * v[i]!;
  // Colliding features can cancel out exactly; fall back to one fixed axis rather than divide by 0.
  if (norm === 0) {
    v[fnv1a(text, 1) % dimensions] = 1;
    norm = 1;
  }
  const scale = 1 / Math.sqrt(norm);
  return Array.from(v, (x) => x * scale);
}

export function createLocalEmbedder(options: { maxInputsPerRequest?: number | undefined } = {}): Embedder {
  return {
    name: 'local',
    model: LOCAL_MODEL,
    dimensions: EXPECTED_DIMENSIONS,
    maxInputsPerRequest: options.maxInputsPerRequest ?? 2048,
    maxTokensPerRequest: 300_000,
    usdPerMillionTokens: 0,
    lexical: true,
    // No tokens billed: the stage reports its own cl100k count of what was embedded.
    async embed(texts): Promise<EmbedResult> {
      return { vectors: texts.map((t) => localVector(t)), tokens: 0 };
    },
  };
}
