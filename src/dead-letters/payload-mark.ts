// A payload pretty-printed with the places a dead letter names marked (`errors show`): the
// validation issues' paths, written the way the providers write them (`payload.fields.email`,
// `payload.entry[0].messaging[2].timestamp`, `payload["odd key"]`). A marked line starts with
// `>` and ends with the message; a key the payload lacks gets a line of its own, so
// "is missing" points at where it should have been.

type Key = string | number;

export interface Mark {
  path: string;
  message: string;
}

/** `payload.a[0]["b c"]` → ['a', 0, 'b c']; undefined when it is not a path into the payload. */
function parsePayloadPath(path: string): Key[] | undefined {
  if (path !== 'payload' && !path.startsWith('payload.') && !path.startsWith('payload[')) return undefined;
  const keys: Key[] = [];
  const re = /\.([A-Za-z_$][A-Za-z0-9_$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  re.lastIndex = 'payload'.length;
  while (re.lastIndex < path.length) {
    const m = re.exec(path);
    if (!m) return undefined;
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else keys.push(JSON.parse(m[3]!) as string);
  }
  return keys;
}

const same = (a: Key[], b: Key[]) => a.length === b.length && a.every((k, i) => k === b[i]);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function childOf(value: unknown, key: Key): { found: boolean; value: unknown } {
  if (Array.isArray(value) && typeof key === 'number') return { found: key < value.length, value: value[key] };
  if (isObject(value) && typeof key === 'string') return { found: Object.hasOwn(value, key), value: value[key] };
  return { found: false, value: undefined };
}

/** Where a mark lands: the node it names, a missing key of an object, or the deepest node there is. */
function place(payload: unknown, keys: Key[]): { at: Key[]; missing?: Key } {
  let node = payload;
  for (let i = 0; i < keys.length; i++) {
    const c = childOf(node, keys[i]!);
    if (!c.found) return i === keys.length - 1 && isObject(node) ? { at: keys.slice(0, i), missing: keys[i]! } : { at: keys.slice(0, i) };
    node = c.value;
  }
  return { at: keys };
}

/**
 * The payload as indented JSON lines, each mark's place flagged. Marks whose path is not into
 * the payload (`occurred_at` of the mapped interaction) are left for the caller to list.
 */
export function markPayload(payload: unknown, marks: Mark[]): { lines: string[]; placed: number } {
  const at: { at: Key[]; missing?: Key; message: string }[] = [];
  for (const m of marks) {
    const keys = parsePayloadPath(m.path);
    if (keys) at.push({ ...place(payload, keys), message: m.message });
  }
  const lines: string[] = [];
  const note = (path: Key[]) =>
    at
      .filter((a) => a.missing === undefined && same(a.at, path))
      .map((a) => a.message)
      .join('; ');
  const emit = (indent: string, text: string, path: Key[]) => {
    const n = note(path);
    lines.push(n ? `> ${indent}${text}   ◀ ${n}` : `  ${indent}${text}`);
  };
  const walk = (value: unknown, path: Key[], indent: string, prefix: string, comma: string) => {
    const missing = at.filter((a) => a.missing !== undefined && same(a.at, path));
    const entries: [Key, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : isObject(value) ? Object.entries(value) : [];
    if (entries.length === 0 && missing.length === 0) {
      const text = Array.isArray(value) ? '[]' : isObject(value) ? '{}' : JSON.stringify(value ?? null);
      emit(indent, `${prefix}${text}${comma}`, path);
      return;
    }
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    emit(indent, `${prefix}${open}`, path);
    const inner = `${indent}  `;
    entries.forEach(([k, v], i) => {
      const last = i === entries.length - 1 && missing.length === 0;
      walk(v, [...path, k], inner, Array.isArray(value) ? '' : `${JSON.stringify(k)}: `, last ? '' : ',');
    });
    for (const m of missing) lines.push(`> ${inner}${JSON.stringify(String(m.missing))}: (missing)   ◀ ${m.message}`);
    lines.push(`  ${indent}${close}${comma}`);
  };
  walk(payload, [], '', '', '');
  return { lines, placed: at.length };
}
