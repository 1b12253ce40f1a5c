// The import graph of src/ keeps its layers: nothing below the command layer reaches up into
// src/commands/, and no files import each other in a circle (type-only imports included). The
// README's own links lead to files a fresh clone has.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';

const srcDir = path.join(packageRoot, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(full) : e.name.endsWith('.ts') ? [full] : [];
  });
}

/** file → the files of src/ it imports (static, dynamic and type-only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(srcDir)) {
    const text = fs.readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) =>
      path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')),
    );
    graph.set(
      file,
      targets.filter((t) => t.startsWith(srcDir)),
    );
  }
  return graph;
}

const rel = (f: string) => path.relative(packageRoot, f);

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('reads every file and finds imports', () => {
    assert.ok(graph.size > 50);
    assert.ok([...graph.values()].flat().length > 100);
  });

  it('has no import from a lower layer up into src/commands/', () => {
    const commands = path.join(srcDir, 'commands') + path.sep;
    const upward = [...graph]
      .filter(([file]) => !file.startsWith(commands) && file !== path.join(srcDir, 'cli.ts'))
      .flatMap(([file, targets]) => targets.filter((t) => t.startsWith(commands)).map((t) => `${rel(file)} → ${rel(t)}`));
    assert.deepEqual(upward, []);
  });

  it('has no import cycle', () => {
    // Tarjan's strongly connected components: any component of more than one file is a cycle.
    let index = 0;
    const indexOf = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string) => {
      indexOf.set(v, index);
      low.set(v, index++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!indexOf.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
      }
      if (low.get(v) === indexOf.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(rel(w));
        } while (w !== v);
        if (component.length > 1) cycles.push(component.sort());
      }
    };
    for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
    assert.deepEqual(cycles, []);
  });
});

describe('the README', () => {
  const readme = fs.readFileSync(path.join(packageRoot, 'README.md'), 'utf8');

  it('links only to files the repository holds (the contract among them), and says how to run the binary', () => {
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/i.test(l));
    assert.ok(links.includes('docs/contract.md'), 'the README links the contract');
    // Tracked, not merely present here: a clone has what git holds (a checkout without .git: on disk).
    let tracked: Set<string> | undefined;
    try {
      tracked = new Set(execFileSync('git', ['ls-files'], { cwd: packageRoot, encoding: 'utf8' }).split('\n'));
    } catch {
      tracked = undefined;
    }
    for (const link of links) {
      const file = path.normalize(link);
      assert.ok(fs.existsSync(path.join(packageRoot, file)), `README links ${link}, which does not exist`);
      if (tracked && fs.statSync(path.join(packageRoot, file)).isFile())
        assert.ok(tracked.has(file), `README links ${link}, which git does not hold`);
    }
    assert.match(readme, /npx omni-ingest <command>/);
  });
});
