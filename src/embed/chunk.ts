// Chunking for embeddings (SPEC §7): the interaction's text, token-counted with cl100k_base (the
// tokenizer of text-embedding-3-*), cut into windows of at most `maxTokens` tokens that overlap.
// Cuts fall on token boundaries that are also character boundaries, so every chunk decodes to
// exactly a piece of the original text (no U+FFFD from a split character), preferably before a
// word or a line. Each chunk is re-counted as the provider will count it and shrunk if needed:
// a chunk is never above its limit, and nothing is ever truncated silently.
import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { type Bpe, encodeOrdinary, loadCl100k } from './bpe.js';

const DEFAULT_CHUNK_TOKENS = 512;
const DEFAULT_OVERLAP_TOKENS = 64;
/** Longer pieces are not remembered (see encode). */
const CACHED_PIECE_MAX = 256;
/** text-embedding-3-* and ada-002 accept at most this many tokens per input. */
export const MODEL_INPUT_LIMIT = 8191;

export interface Chunk {
  index: number;
  text: string;
  /** SHA-256 (hex) of `text`: the chunk's identity for reuse. */
  hash: string;
  /** cl100k_base tokens of `text` on its own (what the provider counts). */
  tokens: number;
}

export interface ChunkOptions {
  maxTokens?: number;
  overlapTokens?: number;
}

interface Encoder extends Bpe {
  /**
   * Tokens per piece (a number when it is one token, as most are). Words recur, and BPE in
   * JavaScript is slow (~1 µs a token): see encode.
   */
  cache: Map<string, number | number[]>;
  /** What js-tiktoken's decode used: it drops a leading byte-order mark, and so must a chunk. */
  utf8: TextDecoder;
}

let encoder: Encoder | undefined;

/**
 * Built on first use: the ranks (1 MB of JavaScript) take ~0.1 s to load and index, which
 * `--help` and commands that never chunk must not pay.
 */
function getEncoder(): Encoder {
  encoder ??= { ...loadCl100k(), cache: new Map(), utf8: new TextDecoder('utf-8') };
  return encoder;
}

/**
 * Token ids of `text`. Special-token strings such as `<|endoftext|>` in an email are plain text
 * here (the library would otherwise throw on them).
 */
export function encode(text: string): number[] {
  const enc = getEncoder();
  const out: number[] = [];
  // Split into pieces and BPE each, with each piece's tokens remembered: about 5× faster on
  // mail, where most pieces are words seen before. Bounded: cleared when full.
  for (const m of text.matchAll(enc.pieces)) {
    const piece = m[0];
    let tokens = enc.cache.get(piece);
    if (tokens === undefined) {
      const fresh: number[] = [];
      encodeOrdinary(enc, piece, fresh);
      tokens = fresh.length === 1 ? fresh[0]! : fresh;
      // Words recur; a long run of letters (a pasted blob) seldom does, and would hold its size here.
      if (piece.length <= CACHED_PIECE_MAX) {
        if (enc.cache.size >= 200_000) enc.cache.clear();
        enc.cache.set(piece, tokens);
      }
    }
    if (typeof tokens === 'number') out.push(tokens);
    else for (let i = 0; i < tokens.length; i++) out.push(tokens[i]!);
  }
  return out;
}

export function countTokens(text: string): number {
  return encode(text).length;
}

/** The text to embed: subject, blank line, body; either alone; empty when both are. */
export function interactionText(subject: string | null | undefined, body: string | null | undefined): string {
  const s = subject?.trim() ?? '';
  const b = body?.trim() ?? '';
  if (s && b) return `${s}\n\n${b}`;
  return s || b;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A cut before token `i` splits no character: token i does not start with a UTF-8 continuation byte. */
function isCharBoundary(enc: Encoder, tokens: number[], i: number): boolean {
  if (i <= 0 || i >= tokens.length) return true;
  return ((enc.firstByte[tokens[i]!] ?? 0x20) & 0xc0) !== 0x80;
}

const startsLine = (enc: Encoder, t: number | undefined) => t !== undefined && enc.firstByte[t] === 0x0a;
const startsWord = (enc: Encoder, t: number | undefined) =>
  t !== undefined && (enc.firstByte[t] === 0x20 || enc.firstByte[t] === 0x0a || enc.firstByte[t] === 0x09);

/** The best cut in (lo, hi]: before a line, else before a word, else the last character boundary. */
function cutBefore(enc: Encoder, tokens: number[], lo: number, wanted: number): number {
  const hi = Math.max(lo + 1, wanted);
  const floor = Math.max(lo + 1, hi - 64);
  for (const prefer of [startsLine, startsWord]) {
    for (let i = hi; i >= floor; i--) if (prefer(enc, tokens[i]) && isCharBoundary(enc, tokens, i)) return i;
  }
  for (let i = hi; i > lo; i--) if (isCharBoundary(enc, tokens, i)) return i;
  return hi; // unreachable: a character is at most 4 bytes, and every token holds at least one
}

/** Where the next window starts: near `at`, moved forward onto a word start when one is close. */
function startNear(enc: Encoder, tokens: number[], at: number, limit: number): number {
  for (let i = at; i < Math.min(at + 16, limit); i++) if (startsWord(enc, tokens[i]) && isCharBoundary(enc, tokens, i)) return i;
  for (let i = at; i < limit; i++) if (isCharBoundary(enc, tokens, i)) return i;
  return limit;
}

/**
 * Splits `text` into chunks of at most `maxTokens` tokens (re-counted on the chunk's own text)
 * overlapping by about `overlapTokens`. Empty or blank text gives no chunk.
 */
export function chunkText(text: string, options: ChunkOptions = {}): Chunk[] {
  const maxTokens = options.maxTokens ?? DEFAULT_CHUNK_TOKENS;
  const overlap = options.overlapTokens ?? DEFAULT_OVERLAP_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 16 || maxTokens > MODEL_INPUT_LIMIT)
    throw new RangeError(`chunk size ${maxTokens} must be between 16 and ${MODEL_INPUT_LIMIT} tokens`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap > maxTokens / 2)
    throw new RangeError(`chunk overlap ${overlap} must be between 0 and half the chunk size`);
  if (text.trim() === '') return [];
  const enc = getEncoder();
  const tokens = encode(text);
  const chunks: Chunk[] = [];
  const push = (chunkText: string, count: number) => {
    if (chunkText.trim() !== '') chunks.push({ index: chunks.length, text: chunkText, hash: sha256Hex(chunkText), tokens: count });
  };
  if (tokens.length <= maxTokens) {
    push(text, tokens.length);
    return chunks;
  }
  // A window's text is its bytes of the text: cuts fall between characters (see cutBefore).
  const bytes = Buffer.from(text, 'utf8');
  const offsets = new Uint32Array(tokens.length + 1);
  for (let i = 0; i < tokens.length; i++) offsets[i + 1] = offsets[i]! + enc.byteLength[tokens[i]!]!;
  let start = 0;
  while (start < tokens.length) {
    let end = tokens.length <= start + maxTokens ? tokens.length : cutBefore(enc, tokens, start, start + maxTokens);
    let piece: string;
    let count: number;
    for (;;) {
      piece = enc.utf8.decode(bytes.subarray(offsets[start], offsets[end]));
      // On its own a piece may tokenize a little differently than inside the whole text.
      count = encode(piece).length;
      if (count <= maxTokens) break;
      end = cutBefore(enc, tokens, start, end - (count - maxTokens));
    }
    push(piece, count);
    if (end >= tokens.length) break;
    start = startNear(enc, tokens, Math.max(end - overlap, start + 1), end);
  }
  return chunks;
}
