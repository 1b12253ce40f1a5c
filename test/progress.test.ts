// Progress an operator can read (issue 12, item 6): without a terminal (cron), a timestamped line
// per running stage every --progress-interval, with done/total, rate and ETA measured from the
// stage's own start; on a terminal, bars that move, with the same figures; a stage not started
// is waiting, never "0/0 100%".
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generateEvents } from '../src/generate/generator.js';
import { createProgress, formatSeconds } from '../src/stages/engine/progress.js';
import { binary, NODE_FLAGS, runCli } from './support/cli.js';
import { migratedDb } from './support/db.js';
import { loadEvents, USER_A } from './support/events.js';
import { startFakeOpenAI } from '../tools/fake-openai.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sink(): NodeJS.WriteStream & { text: string } {
  const s = {
    text: '',
    isTTY: false,
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\S+) ([\d,]+)\/([\d,]+) (\d+)% ([\d,]+)\/s ETA (\S+)$/;
const num = (s: string) => Number(s.replace(/,/g, ''));

describe('progress lines without a terminal', () => {
  it('measures each stage from its own start and prints only running stages', async () => {
    const out = sink();
    const progress = createProgress({ enabled: true, intervalMs: 100, stream: out });
    const first = progress.start('first', 0);
    const second = progress.start('second', 0);
    first.setTotal(100);
    for (let i = 0; i < 5; i++) {
      await sleep(60);
      first.increment(10);
    }
    await sleep(400); // the first stage's work is long over; the second starts now
    second.setTotal(1000);
    for (let i = 0; i < 4; i++) {
      await sleep(60);
      second.increment(100);
    }
    await sleep(120);
    progress.stop();
    const lines = out.text.trim().split('\n');
    assert.ok(
      lines.every((l) => LINE.test(l)),
      lines.join('\n'),
    );
    const last = (label: string) =>
      lines
        .filter((l) => l.split(' ')[1] === label)
        .at(-1)
        ?.match(LINE);
    const s = last('second');
    assert.ok(s, lines.join('\n'));
    // 400 events in about 0.36 s: measured from the whole run it would be under 400/s.
    assert.ok(num(s[6]!) > 600, `second's rate ${s[6]} is not from its own start`);
    assert.ok(!lines.some((l) => / waiting$/.test(l)), 'waiting stages are not repeated in the log');
  });

  it('a count before its total is known is a running count, never "5/0"; bytes keep their unit', async () => {
    const out = sink();
    const progress = createProgress({ enabled: true, intervalMs: 1, stream: out });
    const early = progress.start('early', 0);
    const bytes = progress.start('import', 0, { unit: 'bytes' });
    await sleep(5);
    early.increment(5);
    bytes.setTotal(3_500_000);
    await sleep(5);
    bytes.increment(1_048_576);
    await sleep(20); // the interval's own lines, whether or not an increment fell inside the last millisecond
    progress.stop();
    const lines = out.text.trim().split('\n');
    assert.ok(
      lines.some((l) => / early 5 \d[\d,]*\/s$/.test(l)),
      lines.join('\n'),
    );
    assert.ok(!lines.some((l) => /\/0\b/.test(l)), lines.join('\n'));
    assert.ok(
      lines.some((l) => / import 1\.0 MB\/3\.5 MB 29% [\d.]+ (kB|MB)\/s ETA \S+$/.test(l)),
      lines.join('\n'),
    );
  });

  it('formats durations for humans', () => {
    assert.equal(formatSeconds(5.4), '5s');
    assert.equal(formatSeconds(210), '3m30s');
    assert.equal(formatSeconds(7300), '2h01m');
    assert.equal(formatSeconds(undefined), '?');
  });

  it('a backfill run from cron: per-stage rates close to each stage’s real rate', { timeout: 300_000 }, async () => {
    const fake = await startFakeOpenAI({ latencyMs: 60, chatLatencyMs: 100 });
    const { db, target, close } = await migratedDb();
    try {
      // normalize and resolve are as fast as the machine. embed and insights talk to a provider
      // with a fixed latency, one request at a time, in small batches: embed takes ~2.5 s and
      // insights (20 contacts) ~2 s on any machine, so both print many lines, and insights starts
      // so late that a rate measured from the run's start would show a third of its real rate.
      await loadEvents(db, 'webform', generateEvents('webform', 200, { seed: 3, userId: USER_A, contacts: 20 }));
      await db.close();
      const env = { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url };
      const r = await runCli(
        [...target.args, '--json', '--progress-interval', '250ms', 'backfill', '--since', '3650d', '--create-contacts'].concat([
          '--embedder',
          'openai',
          '--insights-provider',
          'openai',
          '--concurrency',
          '1',
          '--batch-size',
          '5',
        ]),
        { env },
      );
      assert.equal(r.code, 0, r.stderr);
      const summary = r.json<{ stages: { stage: string; eventsPerSecond: number; elapsedMs: number; counts: { events?: number } }[] }>();
      const lines = r.stderr.split('\n').filter((l) => LINE.test(l));
      assert.ok(lines.length > 0, `no progress lines:\n${r.stderr}`);
      const compared: string[] = [];
      for (const stage of summary.stages) {
        const mine = lines.filter((l) => l.split(' ')[1] === stage.stage).map((l) => l.match(LINE)!);
        const lastLine = mine.at(-1);
        // Only lines printed well into the stage say much about its rate.
        if (!lastLine || mine.length < 4 || stage.elapsedMs < 1_500) continue;
        const shown = num(lastLine[6]!);
        const real = stage.eventsPerSecond;
        // The last line is printed before the stage's tail and after its warm-up (the first
        // batches are the slowest); a latency-bound rate stays within 1.6× of the whole stage's.
        assert.ok(shown <= real * 1.6 && shown >= real / 1.6, `${stage.stage}: shown ${shown}/s, real ${real}/s`);
        compared.push(stage.stage);
      }
      assert.ok(compared.includes('insights'), `insights did not run long enough to compare:\n${lines.join('\n')}`);
    } finally {
      await close();
      await fake.close();
    }
  });
});

/** script(1) from util-linux gives a command a pseudo-terminal; without it the terminal test is skipped. */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the binary under a pseudo-terminal 200 columns wide, stdout to a file; resolves what the terminal showed. */
function onTerminal(
  args: string[],
  stdoutFile: string,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; screen: string }> {
  const command = `stty cols 200; ${[process.execPath, ...NODE_FLAGS, binary, ...args].map(quote).join(' ')} > ${quote(stdoutFile)}`;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extraEnv };
  delete env.DATABASE_URL;
  delete env.OMNI_INGEST_DATA_DIR;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (screen += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

describe('progress bars on a terminal', { skip: hasScript ? false : 'needs script(1) for a pseudo-terminal' }, () => {
  it('a backfill: waiting stages are empty bars, no 0/0, each stage ends at its own rate', { timeout: 180_000 }, async () => {
    // embed talks to a provider with a fixed latency, one request at a time: it lasts over a
    // second on any machine, so its final rate is always compared; the others as they come.
    const fake = await startFakeOpenAI({ latencyMs: 100 });
    const { db, target, close } = await migratedDb();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-tty-'));
    try {
      await loadEvents(db, 'webform', generateEvents('webform', 300, { seed: 3, userId: USER_A }));
      await db.close();
      const out = path.join(dir, 'summary.json');
      const stages = ['normalize', 'resolve', 'embed', 'timeline'];
      const r = await onTerminal(
        [
          ...target.args,
          '--json',
          'backfill',
          '--since',
          '3650d',
          '--stages',
          stages.join(','),
          '--create-contacts',
          '--batch-size',
          '25',
        ].concat(['--embedder', 'openai', '--concurrency', '1']),
        out,
        { OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: fake.url },
      );
      assert.equal(r.code, 0, r.screen);
      // Every frame redraws the bars in place: cursor movements become line breaks.
      const lines = r.screen
        .split(String.fromCharCode(27))
        .map((part) => part.replace(/^\[[0-9;?]*[A-Za-z]/, ''))
        .join('\n')
        .split(/\r|\n/)
        .map((l) => l.trim())
        .filter(Boolean);
      for (const later of ['resolve', 'embed', 'timeline'])
        assert.ok(
          lines.some((l) => new RegExp(`^${later}\\s+\\[░+\\] waiting$`).test(l)),
          `${later} is never shown waiting:\n${lines.join('\n')}`,
        );
      assert.ok(!lines.some((l) => /\b0\/0\b/.test(l)), lines.join('\n'));
      const summary = JSON.parse(fs.readFileSync(out, 'utf8')) as {
        stages: { stage: string; eventsPerSecond: number; elapsedMs: number }[];
      };
      const BAR = /^(\S+)\s+\[[█░]+\] ([\d,]+)\/([\d,]+) (\d+)% \| ([\d,]+)\/s \| ETA \S+$/;
      const compared: string[] = [];
      for (const stage of summary.stages) {
        const last = lines
          .map((l) => l.match(BAR))
          .filter((m) => m?.[1] === stage.stage)
          .at(-1);
        assert.ok(last, `no bar for ${stage.stage}:\n${lines.join('\n')}`);
        assert.equal(last[4], '100', last[0]);
        // The bar's rate is frozen where the stage ended: the whole stage's, not one decaying
        // while later stages run, nor one measured from the backfill's start.
        if (stage.elapsedMs < 300) continue;
        const shown = num(last[5]!);
        assert.ok(
          shown <= stage.eventsPerSecond * 2 && shown >= stage.eventsPerSecond / 2,
          `${stage.stage}: shown ${shown}/s, real ${stage.eventsPerSecond}/s`,
        );
        compared.push(stage.stage);
      }
      assert.ok(compared.includes('embed'), JSON.stringify(summary.stages));
    } finally {
      await close();
      await fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
