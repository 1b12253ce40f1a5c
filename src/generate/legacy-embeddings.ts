// Legacy `embeddings.embedding` text in the shapes production databases hold (SPEC §3.1, §10):
// JSON-style arrays written by several generations of an application — compact, with spaces,
// with exponents, with integers, float32 values printed at float64 precision — next to 768-d
// arrays of an older model, 3072-d ones of a larger one, values cut short, NaN and Infinity
// from a client that serialised them anyway, empty arrays, objects, and nulls. For tests and
// benchmarks; deterministic for a seed.

/** What the column swap must find a value to be. */
export type LegacyKind = 'valid' | 'wrong_dimension' | 'malformed' | 'non_finite' | 'null';

export const LEGACY_SHAPES = {
  /** `[0.01234568,-0.002345679,…]` */
  compact: 'valid',
  /** `[ 0.01234568, -0.002345679, … ]`, a line break here and there */
  spaced: 'valid',
  /** `[1.2345679e-02,-2.3456789E-03,…]` */
  exponents: 'valid',
  /** a sparse vector: mostly `0`, some `1` and `-1`, a few decimals */
  integers: 'valid',
  /** float32 values printed with 17 significant digits, as a float64 serialiser does */
  float64: 'valid',
  dim768: 'wrong_dimension',
  dim3072: 'wrong_dimension',
  empty: 'wrong_dimension',
  truncated: 'malformed',
  object: 'malformed',
  nan: 'non_finite',
  infinity: 'non_finite',
  null: 'null',
} as const satisfies Record<string, LegacyKind>;

export type LegacyShape = keyof typeof LEGACY_SHAPES;

export interface LegacyValue {
  shape: LegacyShape;
  kind: LegacyKind;
  /** The text as stored; null for a SQL NULL. */
  text: string | null;
}

/** mulberry32: a small, fast, seedable generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Components the size an embedding model makes (a unit vector of 1536 has them around ±0.03). */
function components(n: number, next: () => number): number[] {
  return Array.from({ length: n }, () => Math.fround((next() * 2 - 1) * 0.08));
}

const compact = (xs: number[]) => `[${xs.map((x) => String(Number(x.toPrecision(8)))).join(',')}]`;

function spaced(xs: number[]): string {
  const parts = xs.map((x, i) => `${String(Number(x.toPrecision(9)))}${i % 256 === 255 ? '\n' : ''}`);
  return `[ ${parts.join(', ')} ]`;
}

const exponents = (xs: number[]) => `[${xs.map((x, i) => x.toExponential(7).replace('e', i % 2 ? 'E' : 'e')).join(',')}]`;

function integers(n: number, next: () => number): string {
  const xs = Array.from({ length: n }, () => {
    const r = next();
    return r < 0.8 ? '0' : r < 0.88 ? '1' : r < 0.96 ? '-1' : String(Number(((next() * 2 - 1) * 0.5).toPrecision(6)));
  });
  return `[${xs.join(',')}]`;
}

/** One legacy value of `shape`; the same seed gives the same text. */
export function legacyEmbedding(shape: LegacyShape, seed: number): LegacyValue {
  const next = rng(seed);
  const v = (n: number) => components(n, next);
  const text = ((): string | null => {
    switch (shape) {
      case 'compact':
        return compact(v(1536));
      case 'spaced':
        return spaced(v(1536));
      case 'exponents':
        return exponents(v(1536));
      case 'integers':
        return integers(1536, next);
      case 'float64':
        return `[${v(1536).map(String).join(', ')}]`;
      case 'dim768':
        return compact(v(768));
      case 'dim3072':
        return compact(v(3072));
      case 'empty':
        return '[]';
      case 'truncated': {
        // Cut by a column limit or a crashed writer: anywhere but the very end.
        const whole = compact(v(1536));
        return whole.slice(0, 1 + Math.floor(next() * (whole.length - 2)));
      }
      case 'object':
        return `{"embedding": ${compact(v(1536))}}`;
      case 'nan': {
        const xs = v(1536).map((x) => String(Number(x.toPrecision(8))));
        xs[Math.floor(next() * xs.length)] = 'NaN';
        return `[${xs.join(',')}]`;
      }
      case 'infinity': {
        const xs = v(1536).map((x) => String(Number(x.toPrecision(8))));
        xs[Math.floor(next() * xs.length)] = next() < 0.5 ? 'Infinity' : '-Infinity';
        return `[${xs.join(', ')}]`;
      }
      case 'null':
        return null;
    }
  })();
  return { shape, kind: LEGACY_SHAPES[shape], text };
}

/** How often each shape comes up by default: mostly valid, every bad kind present. */
const DEFAULT_MIX: Record<LegacyShape, number> = {
  compact: 30,
  spaced: 20,
  exponents: 10,
  integers: 5,
  float64: 15,
  dim768: 4,
  dim3072: 2,
  empty: 2,
  truncated: 3,
  object: 1,
  nan: 2,
  infinity: 2,
  null: 4,
};

/**
 * `count` legacy values drawn from `mix` (weights by shape; default: production-like). With
 * `everyShape`, the first values are one of each shape in the mix, so a small sample still has
 * every kind.
 */
export function* generateLegacyEmbeddings(
  count: number,
  options: { seed?: number; mix?: Partial<Record<LegacyShape, number>>; everyShape?: boolean } = {},
): Generator<LegacyValue> {
  const mix = Object.entries(options.mix ?? DEFAULT_MIX).filter(([, w]) => (w ?? 0) > 0) as [LegacyShape, number][];
  const total = mix.reduce((n, [, w]) => n + w, 0);
  const pick = rng(options.seed ?? 1);
  const base = (options.seed ?? 1) * 1_000_003;
  for (let i = 0; i < count; i++) {
    let shape: LegacyShape;
    if (options.everyShape && i < mix.length) shape = mix[i]![0];
    else {
      let r = pick() * total;
      shape = mix[mix.length - 1]![0];
      for (const [candidate, w] of mix) {
        r -= w;
        if (r < 0) {
          shape = candidate;
          break;
        }
      }
    }
    yield legacyEmbedding(shape, base + i);
  }
}
