// Is the database ready for a command that reads or writes the pipeline's tables? Asked once,
// where every command opens the database (commands/run.ts), so a fresh or half-migrated database
// gets one clear configuration error (exit 2) in well under a second, instead of whatever the
// first query of each command happens to meet ("relation … does not exist").
import type { Queryable } from '../db/connect.js';
import { ConfigError } from '../errors.js';
import type { MigrationFile } from './files.js';
import { legacySchemaPresent, ledgerExists, listApplied } from './sql.js';

/**
 * `full`: every migration applied, unchanged. `schema`: the ingestion tables exist, however they
 * got there (verify: it is what checks a database migrated by other means before `--adopt`).
 */
export type Readiness = 'full' | 'schema';

export async function assertMigrated(db: Queryable, files: MigrationFile[], needs: Readiness = 'full'): Promise<void> {
  if (needs === 'schema' && (await legacySchemaPresent(db))) return;
  const applied = (await ledgerExists(db)) ? await listApplied(db) : [];
  const byName = new Map(applied.map((a) => [a.name, a]));
  const changed = files.filter((f) => {
    const a = byName.get(f.name);
    return a !== undefined && a.checksum !== f.checksum;
  });
  if (changed.length > 0) {
    throw new ConfigError(`migration ${changed.map((f) => f.name).join(', ')} changed after it was applied to this database`, {
      hint: 'restore the file as it was applied (see `omni-ingest migrate status`) and put the change in a new migration file',
    });
  }
  const known = new Set(files.map((f) => f.name));
  const unknown = applied.filter((a) => !known.has(a.name));
  if (unknown.length > 0) {
    throw new ConfigError(`the database has migrations this omni-ingest does not know: ${unknown.map((a) => a.name).join(', ')}`, {
      hint: 'upgrade omni-ingest to the version that applied them',
    });
  }
  const done = files.filter((f) => byName.has(f.name)).length;
  if (done < files.length) {
    throw new ConfigError(`the database is not migrated (${done} of ${files.length} applied): run \`omni-ingest migrate\``, {
      hint:
        done === 0 && (await legacySchemaPresent(db))
          ? 'it holds the ingestion schema applied by other means: `omni-ingest migrate --adopt` verifies and records it'
          : '`omni-ingest migrate status` lists what is pending',
    });
  }
}
