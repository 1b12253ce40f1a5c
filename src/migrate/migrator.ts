// Applies migrations: each file in one transaction, recorded with its checksum, each once even
// when several `migrate` processes start together (they queue on the ledger's table lock).
import os from 'node:os';
import type { Db } from '../db/connect.js';
import { pgvectorInstallHint } from '../db/pg-errors.js';
import { CheckFailedError, DatabaseError, MigrationError, MigrationMismatchError } from '../errors.js';
import type { Logger } from '../logger.js';
import { packageVersion } from '../version.js';
import { findMigration, type MigrationFile } from './files.js';
import * as sql from './sql.js';

/** The migrations a production database may already hold, applied by other means (SPEC §3). */
export const ADOPTABLE_THROUGH = '20250831_ingest_hardening';

type MigrationState = 'applied' | 'pending' | 'changed' | 'unknown';

export interface MigrationStatus {
  name: string;
  state: MigrationState;
  checksum: string | null;
  appliedChecksum: string | null;
  appliedAt: string | null;
  adopted: boolean;
}

export async function migrationStatus(db: Db, files: MigrationFile[]): Promise<MigrationStatus[]> {
  const applied = (await sql.ledgerExists(db)) ? await sql.listApplied(db) : [];
  const byName = new Map(applied.map((a) => [a.name, a]));
  const statuses: MigrationStatus[] = files.map((file) => {
    const a = byName.get(file.name);
    byName.delete(file.name);
    return {
      name: file.name,
      state: !a ? 'pending' : a.checksum === file.checksum ? 'applied' : 'changed',
      checksum: file.checksum,
      appliedChecksum: a?.checksum ?? null,
      appliedAt: a ? new Date(a.applied_at).toISOString() : null,
      adopted: a?.adopted ?? false,
    };
  });
  for (const a of byName.values()) {
    statuses.push({
      name: a.name,
      state: 'unknown',
      checksum: null,
      appliedChecksum: a.checksum,
      appliedAt: new Date(a.applied_at).toISOString(),
      adopted: a.adopted,
    });
  }
  // The order files are applied in (code-unit order, as loadMigrationFiles sorts), not the locale's.
  return statuses.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/** Refuses to go on over a history that does not match the files. */
function assertHistoryIntact(statuses: MigrationStatus[]): void {
  const changed = statuses.filter((s) => s.state === 'changed');
  if (changed.length > 0) {
    throw new MigrationMismatchError(
      `migration ${changed.map((s) => s.name).join(', ')} changed after it was applied ` +
        `(recorded checksum ${changed[0]?.appliedChecksum?.slice(0, 12)}, file now ${changed[0]?.checksum?.slice(0, 12)})`,
      { hint: 'restore the file as it was applied and put the change in a new migration file' },
    );
  }
  const unknown = statuses.filter((s) => s.state === 'unknown');
  if (unknown.length > 0) {
    throw new MigrationMismatchError(
      `the database has migrations this omni-ingest does not know: ${unknown.map((s) => s.name).join(', ')}`,
      {
        hint: 'upgrade omni-ingest to the version that applied them',
      },
    );
  }
  const lastApplied = statuses.filter((s) => s.state === 'applied').at(-1);
  const early = statuses.filter((s) => s.state === 'pending' && lastApplied && s.name < lastApplied.name);
  if (early.length > 0) {
    throw new MigrationError(`pending migration ${early.map((s) => s.name).join(', ')} sorts before the applied ${lastApplied?.name}`, {
      hint: 'give the new file a name (date) after the last applied migration',
    });
  }
}

export interface MigrateOptions {
  files: MigrationFile[];
  /** Stop after this migration. */
  to?: string | undefined;
  /** Record the adoptable migrations as applied once `verifyAdoption` passes (SPEC §3). */
  adopt?: boolean;
  verifyAdoption?: (db: Db) => Promise<{ ok: boolean; failures: string[] }>;
  logger?: Logger;
  lockTimeout?: string;
}

export interface MigrateResult {
  applied: { name: string; durationMs: number }[];
  adopted: string[];
  skipped: string[];
  pendingAfter: string[];
}

function appliedBy(): string {
  return `omni-ingest ${packageVersion()} ${os.userInfo().username}@${os.hostname()}`;
}

const CREATES_VECTOR = /create\s+extension\s+if\s+not\s+exists\s+"?vector"?/i;

async function assertPgvectorFor(db: Db, pending: MigrationFile[]): Promise<void> {
  if (!pending.some((f) => CREATES_VECTOR.test(f.sql))) return;
  const vector = await sql.vectorAvailable(db);
  if (!vector.available) {
    throw new DatabaseError(`pgvector is not installed on the server at ${db.target}; nothing was migrated`, {
      code: 'pgvector_missing',
      hint: pgvectorInstallHint,
    });
  }
}

async function adoptExisting(db: Db, files: MigrationFile[], options: MigrateOptions): Promise<string[]> {
  if (!options.verifyAdoption) throw new MigrationError('--adopt needs the verify checks');
  const adoptable = files.filter((f) => f.name <= ADOPTABLE_THROUGH);
  const verdict = await options.verifyAdoption(db);
  if (!verdict.ok) {
    throw new CheckFailedError(
      `refusing to adopt: the database does not keep the promises of ${ADOPTABLE_THROUGH} (${verdict.failures.length} failed checks)\n` +
        verdict.failures.map((f) => `  ✗ ${f}`).join('\n'),
      { hint: 'fix those, or migrate a fresh database with `omni-ingest migrate`; nothing was recorded' },
    );
  }
  const adopted: string[] = [];
  for (const file of adoptable) {
    await db.transaction(async (tx) => {
      await sql.lockLedger(tx);
      if (await sql.findApplied(tx, file.name)) return;
      await sql.recordApplied(tx, { name: file.name, checksum: file.checksum, durationMs: 0, appliedBy: appliedBy(), adopted: true });
      adopted.push(file.name);
    });
  }
  return adopted;
}

export async function migrate(db: Db, options: MigrateOptions): Promise<MigrateResult> {
  const { files, logger } = options;
  const target = options.to === undefined ? files.at(-1) : findMigration(files, options.to);
  await createLedgerRacing(db);
  assertHistoryIntact(await migrationStatus(db, files));

  const result: MigrateResult = { applied: [], adopted: [], skipped: [], pendingAfter: [] };
  if (options.adopt) result.adopted = await adoptExisting(db, files, options);

  const statuses = await migrationStatus(db, files);
  const pending = files.filter((f) => statuses.find((s) => s.name === f.name)?.state === 'pending' && (!target || f.name <= target.name));
  await assertPgvectorFor(db, pending);

  for (const file of pending) {
    const started = Date.now();
    const applied = await db.transaction(async (tx) => {
      await sql.lockLedger(tx);
      const existing = await sql.findApplied(tx, file.name);
      if (existing) {
        if (existing.checksum !== file.checksum)
          throw new MigrationError(`migration ${file.name} was applied by another process with a different checksum`);
        return false; // another process applied it while we waited for the lock
      }
      if ((await sql.countApplied(tx)) === 0 && (await sql.legacySchemaPresent(tx))) {
        throw new MigrationError('this database already has the ingestion schema, applied by other means; nothing was migrated', {
          hint: 'run `omni-ingest migrate --adopt`: it verifies the schema and records those migrations as applied',
        });
      }
      await sql.setLockTimeout(tx, options.lockTimeout ?? '30s');
      try {
        if (CREATES_VECTOR.test(file.sql) && (await sql.createVectorInExtensionsSchema(tx)))
          logger?.info('created the vector extension in the extensions schema');
        await sql.exposeVectorSchema(tx);
        await tx.query(file.sql);
      } catch (err) {
        const cause = err instanceof Error ? err.message : String(err);
        throw new MigrationError(`migration ${file.name} failed and was rolled back: ${cause}`, {
          cause: err,
          ...(err instanceof DatabaseError && err.hint ? { hint: err.hint } : {}),
        });
      }
      await sql.recordApplied(tx, {
        name: file.name,
        checksum: file.checksum,
        durationMs: Date.now() - started,
        appliedBy: appliedBy(),
        adopted: false,
      });
      return true;
    });
    if (applied) {
      const durationMs = Date.now() - started;
      result.applied.push({ name: file.name, durationMs });
      logger?.info(`applied ${file.name} (${durationMs} ms)`);
    } else {
      result.skipped.push(file.name);
      logger?.debug(`${file.name} was applied meanwhile by another process`);
    }
  }
  result.pendingAfter = (await migrationStatus(db, files)).filter((s) => s.state === 'pending').map((s) => s.name);
  return result;
}

/** `CREATE … IF NOT EXISTS` is not atomic: two processes creating the ledger at once can collide. */
async function createLedgerRacing(db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await sql.createLedger(db);
      return;
    } catch (err) {
      const state = err instanceof DatabaseError ? err.sqlState : undefined;
      if (attempt >= 3 || (state !== '23505' && state !== '42P07' && state !== '42P06')) throw err;
    }
  }
}
