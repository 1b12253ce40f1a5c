// Compares text with a file committed under test/snapshots/; `UPDATE_SNAPSHOTS=1 npm test`
// rewrites the files instead (then review the diff like code).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';

const dir = path.join(packageRoot, 'test', 'snapshots');

/** Run-to-run noise out of a human summary: times, rates, ids, temporary paths. */
export function stable(text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/\d+(\.\d+)? s\b/g, '<t> s')
    .replace(/\(\d[\d,]*\/s\)/g, '(<n>/s)')
    .replace(/\/tmp\/[^\s'")]+/g, '<tmp>')
    .replace(/pgvector \d+(\.\d+)+/g, 'pgvector <version>')
    .replace(/[ \t]+$/gm, '');
}

export function matchSnapshot(name: string, actual: string): void {
  const file = path.join(dir, `${name}.txt`);
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `no snapshot ${path.relative(packageRoot, file)}: run UPDATE_SNAPSHOTS=1 npm test and review it`);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs from its snapshot (UPDATE_SNAPSHOTS=1 npm test rewrites it)`);
}
