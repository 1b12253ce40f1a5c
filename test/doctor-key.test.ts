// doctor checks the provider key with one authenticated request, names a host it cannot reach,
// and skips the check with --offline (issue 12, item 3).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startFakeOpenAI, type FakeOpenAI } from '../tools/fake-openai.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';

const KEY = 'sk-doctor-check-0123456789';

interface Doc {
  findings: { name: string; ok: boolean; detail: string }[];
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('doctor and the provider key', () => {
  let fake: FakeOpenAI;
  let target: TestTarget;
  before(async () => {
    fake = await startFakeOpenAI({ echoKey: true });
    target = await migratedTarget();
  });
  after(async () => {
    await fake.close();
    await target.drop();
  });

  const doctor = (env: Record<string, string | undefined>, extra: string[] = []) =>
    runCli([...target.args, 'doctor', '--json', ...extra], { env: { OPENAI_API_KEY: KEY, ...env } });
  const keyFinding = (doc: Doc) => doc.findings.find((f) => f.name === 'provider key');

  it('a key the provider accepts: one request, no problem', async () => {
    const before_ = fake.stats.requests;
    const r = await doctor({ OPENAI_BASE_URL: fake.url });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(keyFinding(r.json<Doc>())?.detail ?? '', /OPENAI_API_KEY accepted by 127\.0\.0\.1:\d+/);
    assert.equal(fake.stats.requests - before_, 1);
  });

  it('a key the provider refuses: exit 3, and the key is not printed', async () => {
    fake.options.unauthorized = 1;
    const r = await doctor({ OPENAI_BASE_URL: fake.url });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const finding = keyFinding(r.json<Doc>());
    assert.equal(finding?.ok, false);
    assert.match(finding?.detail ?? '', /refused OPENAI_API_KEY \(401\)/);
    assert.ok(!(r.stdout + r.stderr).includes(KEY));
  });

  it('a host it cannot reach is named; --offline skips the check', async () => {
    const base = `http://127.0.0.1:${await closedPort()}/v1`;
    const r = await doctor({ OPENAI_BASE_URL: base });
    assert.equal(r.code, 3);
    assert.match(keyFinding(r.json<Doc>())?.detail ?? '', /could not reach 127\.0\.0\.1:\d+/);
    const offline = await doctor({ OPENAI_BASE_URL: base }, ['--offline']);
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal(keyFinding(offline.json<Doc>()), undefined);
  });
});
