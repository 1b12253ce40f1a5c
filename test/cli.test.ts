import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { report, requestedCommand } from '../src/cli.js';
import { CATALOG } from '../src/commands/catalog.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { freshTarget, onServer, serverUrl, type TestTarget } from './support/db.js';

describe('the binary', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const command of ['migrate', 'verify', 'doctor']) assert.match(r.stdout, new RegExp(`\\b${command}\\b`));
    assert.match(r.stdout, /Exit codes/);
  });

  it('--help on a subcommand explains it with examples', async () => {
    const r = await runCli(['migrate', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--to <name>/);
    assert.match(r.stdout, /Examples:/);
  });

  it('every command of the catalog loads and explains itself', async () => {
    for (const entry of CATALOG) {
      const r = await runCli([entry.name, '--help']);
      assert.equal(r.code, 0, `${entry.name}: ${r.stderr}`);
      assert.ok(r.stdout.includes(entry.description.slice(0, 40)), `${entry.name} --help lacks its description`);
    }
    const top = await runCli(['--help']);
    for (const entry of CATALOG) assert.match(top.stdout, new RegExp(`\\n  ${entry.name}\\b`));
  });

  it('finds the command behind global options and their values', () => {
    assert.equal(requestedCommand(['node', 'bin', '--data-dir', 'verify', 'doctor', '--json']), 'doctor');
    assert.equal(requestedCommand(['node', 'bin', '--json', 'help', 'migrate']), 'migrate');
    assert.equal(requestedCommand(['node', 'bin', '--database-url=postgres://x/y', 'stats']), 'stats');
    assert.equal(requestedCommand(['node', 'bin', '--help']), undefined);
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('an unknown flag exits 2 with a suggestion and usage hint', async () => {
    const r = await runCli(['verify', '--jsno']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--jsno'/);
    assert.match(r.stderr, /Did you mean --json\?/);
    assert.match(r.stderr, /--help/);
    assert.equal(r.stdout, '');
  });

  it('an unknown command exits 2', async () => {
    const r = await runCli(['normalise']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'normalise'/);
  });

  it('a usage error commander finds still prints exactly one JSON document with --json', async () => {
    for (const args of [
      ['--json', 'verify', '--jsno'],
      ['--json', 'normalise'],
      ['--json', 'import', 'x.ndjson'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(' '));
      const doc = r.json<{ ok: boolean; error: { code: string; message: string } }>();
      assert.equal(doc.ok, false);
      assert.equal(doc.error.code, 'usage');
      assert.ok(doc.error.message.length > 0);
    }
  });

  it('reads every number flag the same way: 0x10 is refused by every command that takes a number', async () => {
    const user = ['--user', '11111111-1111-4111-8111-111111111111'];
    const cases: [string[], string][] = [
      [['embed', '--concurrency'], '--concurrency'],
      [['insights', '--concurrency'], '--concurrency'],
      [['backfill', '--concurrency'], '--concurrency'],
      [['normalize', '--workers'], '--workers'],
      [['normalize', '--batch-size'], '--batch-size'],
      [['import', 'x.ndjson', '--provider', 'gmail', ...user, '--batch-size'], '--batch-size'],
      [['runs', 'list', '--limit'], '--limit'],
      [['demo', '--events'], '--events'],
    ];
    for (const [args, flag] of cases) {
      const r = await runCli([...args, '0x10'], { env: { OPENAI_API_KEY: '' } });
      assert.equal(r.code, 2, `${args.join(' ')} 0x10: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${flag} "0x10" must be a whole number between`), args.join(' '));
    }
    for (const value of ['1e3', '-1', '1.5', ' ', '']) {
      const r = await runCli(['embed', '--concurrency', value], { env: { OPENAI_API_KEY: '' } });
      assert.equal(r.code, 2, `--concurrency "${value}": ${r.stderr}`);
    }
  });

  it('shows the stack of an unexpected error with --verbose, never a secret, and only the message without', () => {
    const capture = (verbose: boolean) => {
      const written: string[] = [];
      const original = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
      try {
        const bug = new TypeError('cannot read properties of undefined (key sk-secret-123)');
        const code = report(bug, { exitCode: 0, json: false, verbose, secrets: ['sk-secret-123'] });
        return { code, text: written.join('') };
      } finally {
        process.stderr.write = original;
      }
    };
    const quiet = capture(false);
    assert.equal(quiet.code, 1);
    assert.match(quiet.text, /^error: cannot read properties of undefined \(key \*\*\*\*\)\n$/);
    const loud = capture(true);
    assert.match(loud.text, /TypeError: .*\n\s+at /);
    assert.doesNotMatch(loud.text, /sk-secret-123/);
  });

  it('help <command> explains the command and exits 0', async () => {
    const r = await runCli(['help', 'normalize']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: omni-ingest normalize/);
  });

  it('a reader that closes the pipe early (| head -1) is not an error', async () => {
    const child = spawn(process.execPath, [...NODE_FLAGS, binary, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the binary has started: every write it makes meets a closed pipe.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/);
  });

  it('a non-Postgres URL exits 2 naming the flag and the variable', async () => {
    const r = await runCli(['verify'], { env: { DATABASE_URL: 'mysql://root:hunter2@localhost/db' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--database-url \/ DATABASE_URL \(from DATABASE_URL\)/);
    assert.match(r.stderr, /needs PostgreSQL/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  });

  it('a URL that is not a URL exits 2 naming the flag', async () => {
    const r = await runCli(['--database-url', 'not a url', 'doctor', '--json']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--database-url \/ DATABASE_URL \(from --database-url\)/);
    assert.equal(r.json<{ ok: boolean; error: { code: string } }>().error.code, 'config');
  });

  it('an unreachable database exits 1, says where, and never prints the password', async () => {
    const port = await closedPort();
    const r = await runCli(['--database-url', `postgres://app:s3cretpw@127.0.0.1:${port}/crm`, 'verify', '--json']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect to PostgreSQL at postgres:\/\/app:\*\*\*\*@127\.0\.0\.1/);
    assert.doesNotMatch(r.stderr + r.stdout, /s3cretpw/);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'connection');
  });

  it('a server that does not speak PostgreSQL exits 1 with a clear error', async () => {
    const server = net.createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const r = await runCli(['--database-url', `postgres://app:pw12345@127.0.0.1:${port}/crm`, 'verify']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /PostgreSQL at postgres:\/\/app:\*\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(r.stderr, /pw12345/);
    } finally {
      server.close();
    }
  });

  it('doctor reports an unreachable database as a failed check (exit 3)', async () => {
    const port = await closedPort();
    const r = await runCli(['--database-url', `postgres://127.0.0.1:${port}/crm`, 'doctor', '--json']);
    assert.equal(r.code, 3);
    const body = r.json<{ ok: boolean; findings: { name: string; ok: boolean }[] }>();
    assert.equal(body.ok, false);
    assert.deepEqual(
      body.findings.map((f) => [f.name, f.ok]),
      [['connect', false]],
    );
  });
});

describe('the binary on a database', () => {
  let target: TestTarget;
  before(async () => {
    target = await freshTarget();
  });
  after(async () => {
    await target.drop();
  });

  it('migrate applies everything, then a second run is a no-op', async () => {
    const first = await runCli([...target.args, 'migrate', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const one = first.json<{ applied: { name: string }[]; pendingAfter: string[] }>();
    assert.deepEqual(one.applied.map((a) => a.name).slice(0, 2), ['20250830_legacy_baseline', '20250831_ingest_hardening']);
    assert.deepEqual(one.pendingAfter, []);
    const second = await runCli([...target.args, 'migrate', '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.json<{ applied: unknown[] }>().applied, []);
    const db = await target.open();
    try {
      const { rows } = await db.query<{ name: string; n: number }>(
        'SELECT name, count(*)::int AS n FROM omni_ingest.schema_migrations GROUP BY name',
      );
      assert.equal(rows.length, one.applied.length);
      assert.ok(rows.every((r) => r.n === 1));
    } finally {
      await db.close();
    }
  });

  it('verify --json passes on the migrated database', async () => {
    const r = await runCli([...target.args, 'verify', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const body = r.json<{ ok: boolean; failed: number; checks: { name: string; ok: boolean }[] }>();
    assert.equal(body.ok, true);
    assert.equal(body.failed, 0);
    assert.ok(body.checks.length >= 30, `only ${body.checks.length} checks`);
  });

  it('doctor finds no problems and names the server', async () => {
    const r = await runCli([...target.args, 'doctor', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const body = r.json<{ findings: { name: string; ok: boolean; detail: string }[] }>();
    assert.deepEqual(
      body.findings.map((f) => f.name),
      [
        'connect',
        'server',
        'role',
        'pgvector',
        'migrations',
        'row level security',
        'embedding dimensions',
        'dead letters',
        'retention',
        'providers',
      ],
    );
    assert.ok(body.findings.every((f) => f.ok));
    assert.match(body.findings[1]!.detail, /^PostgreSQL \d+/);
  });

  it('migrate status lists every migration as applied with its checksum', async () => {
    const r = await runCli([...target.args, 'migrate', 'status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { migrations } = r.json<{ migrations: { name: string; state: string; checksum: string }[] }>();
    assert.ok(migrations.length >= 2);
    for (const m of migrations) {
      assert.equal(m.state, 'applied');
      assert.match(m.checksum, /^[0-9a-f]{64}$/);
    }
  });

  it('migrate --to an unknown name exits 2 and lists the known ones', async () => {
    const r = await runCli([...target.args, 'migrate', '--to', '20990101_nope']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown migration "20990101_nope"/);
    assert.match(r.stderr, /20250831_ingest_hardening/);
  });

  it('stdout holds only the JSON document with --json', async () => {
    const r = await runCli([...target.args, '--json', 'migrate', 'status']);
    assert.equal(r.code, 0);
    assert.doesNotThrow(() => r.json());
  });
});

describe('the embedded database', { skip: onServer ? 'embedded only' : false }, () => {
  it('is created in --data-dir by migrate, which says so on stderr; doctor reports its absence and creates nothing', async () => {
    const target = await freshTarget();
    try {
      const dataDir = `${target.config.dataDir}-new`;
      const d = await runCli(['--data-dir', dataDir, 'doctor']);
      assert.equal(d.code, 3, d.stdout);
      assert.match(d.stdout, /✗ connect: the database is not migrated \(0 of \d+ applied; there is no embedded database in .*-new yet\)/);
      assert.equal(fs.existsSync(dataDir), false);
      const r = await runCli(['--data-dir', dataDir, 'migrate']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /creating the embedded database in .*-new/);
      fs.rmSync(dataDir, { recursive: true, force: true });
    } finally {
      await target.drop();
    }
  });

  it('refuses a second process on the same folder with exit 75', async () => {
    const target = await freshTarget();
    const db = await target.open();
    try {
      const r = await runCli([...target.args, 'verify']);
      assert.equal(r.code, 75, r.stderr);
      assert.match(r.stderr, /in use by process \d+/);
    } finally {
      await db.close();
      await target.drop();
    }
  });
});

describe('concurrent migrate', { skip: onServer ? false : 'needs a real server' }, () => {
  it('two processes started together apply each migration exactly once', async () => {
    assert.ok(serverUrl);
    const target = await freshTarget();
    try {
      const runs = await Promise.all([1, 2, 3].map(() => runCli([...target.args, 'migrate', '--json'])));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const applied = runs.flatMap((r) => r.json<{ applied: { name: string }[] }>().applied.map((a) => a.name));
      assert.equal(new Set(applied).size, applied.length, `applied twice: ${applied.join(', ')}`);
      const db = await target.open();
      try {
        const { rows } = await db.query<{ name: string }>('SELECT name FROM omni_ingest.schema_migrations');
        assert.deepEqual(rows.map((r) => r.name).sort(), [...applied].sort());
      } finally {
        await db.close();
      }
    } finally {
      await target.drop();
    }
  });
});

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
