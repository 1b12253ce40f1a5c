// `archive` refuses what it must (exit 2): a hot window under 90 days, a missing or unknown
// target, bad numbers, a bad endpoint — before it touches the database.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './support/cli.js';

describe('archive usage errors', { concurrency: 4 }, () => {
  const cases: [string, string[], RegExp][] = [
    ['fewer than 90 days', ['archive', '--older-than', '30', '--to', 'file:///tmp/x'], /refused/],
    ['no --older-than', ['archive', '--to', 'file:///tmp/x'], /--older-than/],
    ['no --to', ['archive', '--older-than', '120'], /--to/],
    ['an unknown scheme', ['archive', '--older-than', '120', '--to', 'ftp://host/dir'], /file:\/\/<dir> or s3:\/\//],
    ['a bad bucket', ['archive', '--older-than', '120', '--to', 's3://A_B/x'], /bucket/],
    ['a bad batch size', ['archive', '--older-than', '120', '--to', 'file:///tmp/x', '--batch-size', '0x10'], /--batch-size/],
    ['days that are no number', ['archive', '--older-than', 'soon', '--to', 'file:///tmp/x'], /--older-than/],
    ['a bad endpoint', ['archive', '--older-than', '120', '--to', 's3://bkt/x', '--s3-endpoint', 'ftp://x'], /--s3-endpoint/],
    ['restore without --from', ['archive', 'restore'], /--from/],
    ['list with an unknown state', ['archive', 'list', '--state', 'gone'], /--state/],
    ['an unknown flag', ['archive', '--older-than', '120', '--to', 'file:///tmp/x', '--fast'], /unknown option/],
    ['a % that starts no escape', ['archive', '--older-than', '120', '--to', 'file:///tmp/100%'], /file:\/\/\/tmp\/100%.*escape/],
    [
      'credentials in an s3:// URI',
      ['archive', '--older-than', '120', '--to', 's3://AKIAXYZ:TopSecret123@crm-archive/x'],
      /s3:\/\/\*\*\*\*@crm-archive\/x/,
    ],
    ["restore with the run's --user", ['archive', 'restore', '--from', 'file:///tmp/x', '--user', 'me'], /unknown option '--user'/],
    ["restore with the run's --time-budget", ['archive', 'restore', '--from', 'file:///tmp/x', '--time-budget', '5m'], /unknown option/],
    ["verify with the run's --provider", ['archive', 'verify', '--provider', 'gmail'], /unknown option '--provider'/],
    ["list with the run's --to", ['archive', 'list', '--to', 'file:///tmp/x'], /unknown option '--to'/],
  ];
  for (const [name, args, message] of cases) {
    it(`exit 2 for ${name}`, async () => {
      const r = await runCli(['--data-dir', '/nonexistent/never-opened', '--json', ...args]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.json<{ error: { message: string } }>().error.message, message);
      assert.ok(!(r.stdout + r.stderr).includes('TopSecret123'));
    });
  }
});
