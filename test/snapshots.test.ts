// What users read, held still: every command's --help, the human summaries of verify,
// normalize and backfill, and the schema the migrations produce. A change to any of them is a
// reviewed change of a file under test/snapshots/ or docs/schema.sql.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli.js';
import { CATALOG } from '../src/commands/catalog.js';
import { packageRoot } from '../src/paths.js';
import { dumpSchema, SCHEMA_FILE } from '../tools/schema-dump.js';
import { runCli } from './support/cli.js';
import { migratedDb, migratedTarget } from './support/db.js';
import { matchSnapshot, stable } from './support/snapshot.js';

const USER = '11111111-1111-4111-8111-111111111111';

/** The help of the binary (no name), or of one command and its subcommands, at a fixed width. */
async function helpOf(name: string | undefined): Promise<Map<string, string>> {
  const program = await buildProgram({ exitCode: 0, json: false, verbose: false, secrets: [] }, [
    'node',
    'omni-ingest',
    ...(name ? [name] : []),
  ]);
  const out = new Map<string, string>();
  const walk = (cmd: Command, prefix: string) => {
    cmd.configureHelp({ helpWidth: 100 });
    out.set(`${prefix}${cmd.name()}`, cmd.helpInformation());
    if (name !== undefined) for (const sub of cmd.commands) walk(sub, `${prefix}${cmd.name()} `);
  };
  walk(name === undefined ? program : program.commands.find((c) => c.name() === name)!, name === undefined ? '' : 'omni-ingest ');
  return out;
}

describe('--help', () => {
  it('of the binary and of every command and subcommand stays as reviewed', async () => {
    const all = new Map([...(await helpOf(undefined))]);
    for (const entry of CATALOG) for (const [k, v] of await helpOf(entry.name)) all.set(k, v);
    for (const [name, text] of all) matchSnapshot(`help/${name.replace(/ /g, '_')}`, text);
    assert.ok(all.size > CATALOG.length, 'subcommands are included');
  });
});

describe('human summaries', () => {
  it('verify on a migrated database', async () => {
    const target = await migratedTarget();
    try {
      const r = await runCli([...target.args, 'verify']);
      assert.equal(r.code, 0, r.stderr);
      matchSnapshot('summary/verify', stable(r.stdout));
    } finally {
      await target.drop();
    }
  });

  it('normalize and backfill over the bundled fixtures', async () => {
    const target = await migratedTarget();
    try {
      for (const p of ['gmail', 'twilio', 'instagram', 'webform']) {
        const r = await runCli([
          ...target.args,
          'import',
          path.join(packageRoot, 'fixtures', 'demo', `${p}.ndjson`),
          '--provider',
          p,
          '--user',
          USER,
        ]);
        assert.equal(r.code, 0, r.stderr);
      }
      const normalize = await runCli([...target.args, 'normalize']);
      assert.equal(normalize.code, 0, normalize.stderr);
      matchSnapshot('summary/normalize', stable(normalize.stdout));
      const backfill = await runCli(
        [
          ...target.args,
          'backfill',
          '--since',
          '2000-01-01',
          '--create-contacts',
          '--embedder',
          'local',
          '--insights-provider',
          'heuristic',
        ],
        {
          env: { OPENAI_API_KEY: '' },
        },
      );
      assert.equal(backfill.code, 0, backfill.stderr);
      // How many requests embed's batches make depends on when the provider first answers (until
      // then batches lease only what fills the request slots, and two batches in flight may both
      // send a text they share, which the provider counts twice): the layout is what is checked.
      const embedCost = /\d+ tokens, \d+ requests/;
      assert.match(backfill.stdout, embedCost);
      matchSnapshot('summary/backfill', stable(backfill.stdout).replace(embedCost, '<n> tokens, <n> requests'));
    } finally {
      await target.drop();
    }
  });
});

describe('the schema the migrations produce', () => {
  it('is the committed docs/schema.sql', async () => {
    const { db, close } = await migratedDb();
    try {
      const actual = await dumpSchema(db);
      if (process.env.UPDATE_SNAPSHOTS === '1') fs.writeFileSync(SCHEMA_FILE, actual);
      assert.equal(
        actual,
        fs.readFileSync(SCHEMA_FILE, 'utf8'),
        'the migrations changed the schema: run `npm run schema:dump` and commit docs/schema.sql with the migration',
      );
    } finally {
      await close();
    }
  });
});
