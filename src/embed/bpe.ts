// cl100k_base byte-pair encoding: js-tiktoken's ranks and merge order, with the same output
// (test/chunk-reference.test.ts compares them), built to hold a fraction of its memory. Its
// Tiktoken keys 100,000 ranks by strings such as "32,116,104", keeps every token's bytes for
// `decode`, and its construction leaves ~77 MB of RSS behind (heap +31 MB). Here a token's
// bytes are a one-byte-per-character (latin1) key, decoded from the ranks file into one reused
// buffer, and only each token's byte length is kept: chunking cuts the text's own UTF-8 bytes
// and never decodes tokens. ~13 MB of RSS, in a third of the time.
import { createRequire } from 'node:module';
import type { TiktokenBPE } from 'js-tiktoken/lite';

export interface Bpe {
  /** cl100k's pre-tokenizer: text splits into pieces, and BPE never crosses a piece's edge. */
  pieces: RegExp;
  /** Token bytes (as a latin1 string) → token id. */
  ranks: Map<string, number>;
  /** Per token id: its length in bytes. */
  byteLength: Uint8Array;
  /** Per token id: its first byte (special tokens, never produced here, read as a space). */
  firstByte: Uint8Array;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The ranks file lists each token's bytes in base64, one line per run of consecutive ids:
 * `<prefix> <first id> <b64> <b64> …`. A later listing of the same bytes wins, as in js-tiktoken.
 */
export function loadCl100k(): Bpe {
  const cl100k = createRequire(import.meta.url)('js-tiktoken/ranks/cl100k_base') as TiktokenBPE;
  const size = Math.max(...Object.values(cl100k.special_tokens)) + 1;
  const byteLength = new Uint8Array(size);
  const firstByte = new Uint8Array(size).fill(0x20);
  const ranks = new Map<string, number>();
  const digit = new Int8Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) digit[B64.charCodeAt(i)] = i;
  const bytes = Buffer.alloc(1024);
  const s = cl100k.bpe_ranks;
  for (let line = 0; line < s.length; ) {
    let eol = s.indexOf('\n', line);
    if (eol < 0) eol = s.length;
    const idAt = s.indexOf(' ', line) + 1;
    let at = s.indexOf(' ', idAt);
    if (idAt === 0 || at < 0 || at > eol) at = eol;
    let id = Number(s.slice(idAt, at));
    for (at++; at < eol; id++) {
      let end = s.indexOf(' ', at);
      if (end < 0 || end > eol) end = eol;
      let n = 0;
      let acc = 0;
      let bits = 0;
      for (let k = at; k < end; k++) {
        const d = digit[s.charCodeAt(k)] ?? -1;
        if (d < 0) break; // '=' padding
        acc = ((acc << 6) | d) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          bytes[n++] = (acc >> bits) & 0xff;
        }
      }
      ranks.set(bytes.toString('latin1', 0, n), id);
      byteLength[id] = n;
      firstByte[id] = bytes[0]!;
      at = end + 1;
    }
    line = eol + 1;
  }
  return { pieces: new RegExp(cl100k.pat_str, 'gu'), ranks, byteLength, firstByte };
}

/** Pieces at least this long are merged through a heap: the scan below is quadratic in length. */
const HEAP_FROM = 32;

/**
 * Appends the token ids of one piece's bytes (a latin1 string): js-tiktoken's merge, which
 * repeatedly joins the adjacent pair of lowest rank (the leftmost on a tie).
 */
function bytePairEncode(ranks: Map<string, number>, bytes: string, out: number[]): void {
  if (bytes.length >= HEAP_FROM) {
    bytePairEncodeLong(ranks, bytes, out);
    return;
  }
  // Short pieces, the usual case: each pair's rank is kept between rounds, the lowest found by a scan.
  const starts = Array.from({ length: bytes.length + 1 }, (_, i) => i);
  const pairRank = (i: number) => (i + 2 < starts.length ? (ranks.get(bytes.slice(starts[i], starts[i + 2])) ?? Infinity) : Infinity);
  const pairs = Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => pairRank(i));
  for (;;) {
    let min = Infinity;
    let at = -1;
    for (let i = 0; i < pairs.length; i++) {
      if (pairs[i]! < min) {
        min = pairs[i]!;
        at = i;
      }
    }
    if (at < 0) break;
    starts.splice(at + 1, 1);
    pairs.splice(at, 1);
    if (at < pairs.length) pairs[at] = pairRank(at);
    if (at > 0) pairs[at - 1] = pairRank(at - 1);
  }
  for (let i = 0; i + 1 < starts.length; i++) out.push(ranks.get(bytes.slice(starts[i], starts[i + 1]))!);
}

/**
 * The same merges for a long piece (a word of thousands of letters in a pasted blob would take
 * minutes with the scan, and hold its batch): the parts are a linked list, the candidate pairs a
 * min-heap on (rank, start), so the lowest and leftmost comes first, as in the scan. A pair's rank
 * depends only on its bytes, so an entry is current while its start is a part whose pair still
 * ends where the entry says; others are skipped when they surface.
 */
function bytePairEncodeLong(ranks: Map<string, number>, bytes: string, out: number[]): void {
  const n = bytes.length;
  const next = Int32Array.from({ length: n }, (_, i) => i + 1);
  const prev = Int32Array.from({ length: n + 1 }, (_, i) => i - 1);
  const alive = new Uint8Array(n).fill(1);
  const heap = new PairHeap();
  const offer = (start: number) => {
    const mid = next[start]!;
    if (mid >= n) return;
    const end = next[mid]!;
    const rank = ranks.get(bytes.slice(start, end));
    if (rank !== undefined) heap.push(rank, start, end);
  };
  for (let i = 0; i + 1 < n; i++) offer(i);
  for (let top = heap.pop(); top; top = heap.pop()) {
    const { start, end } = top;
    const mid = next[start]!;
    if (!alive[start] || mid >= n || next[mid] !== end) continue;
    alive[mid] = 0;
    next[start] = end;
    prev[end] = start;
    offer(start);
    if (prev[start]! >= 0) offer(prev[start]!);
  }
  for (let i = 0; i < n; i = next[i]!) out.push(ranks.get(bytes.slice(i, next[i]))!);
}

/** A binary min-heap of pairs by (rank, start). */
class PairHeap {
  private readonly items: { rank: number; start: number; end: number }[] = [];

  push(rank: number, start: number, end: number): void {
    const items = this.items;
    items.push({ rank, start, end });
    for (let i = items.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (!before(items[i]!, items[up]!)) break;
      [items[i], items[up]] = [items[up]!, items[i]!];
      i = up;
    }
  }

  pop(): { rank: number; start: number; end: number } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let least = i;
        if (l < items.length && before(items[l]!, items[least]!)) least = l;
        if (r < items.length && before(items[r]!, items[least]!)) least = r;
        if (least === i) break;
        [items[i], items[least]] = [items[least]!, items[i]!];
        i = least;
      }
    }
    return top;
  }
}

const before = (a: { rank: number; start: number }, b: { rank: number; start: number }) =>
  a.rank < b.rank || (a.rank === b.rank && a.start < b.start);

/**
 * Token ids of `text` appended to `out`, exactly as js-tiktoken's `encode(text, [], [])`:
 * special-token strings are plain text.
 */
export function encodeOrdinary(bpe: Bpe, text: string, out: number[]): void {
  for (const m of text.matchAll(bpe.pieces)) {
    const bytes = Buffer.from(m[0], 'utf8').toString('latin1');
    const id = bpe.ranks.get(bytes);
    if (id !== undefined) out.push(id);
    else bytePairEncode(bpe.ranks, bytes, out);
  }
}
