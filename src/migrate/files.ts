// Migration files on disk: `YYYYMMDD[HHMM]_name.sql`, applied in name order (SPEC §3).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MigrationError, UsageError } from '../errors.js';

export interface MigrationFile {
  /** The file name without `.sql`, e.g. `20250831_ingest_hardening`: the migration's identity. */
  name: string;
  file: string;
  sql: string;
  /** SHA-256 of the text with line endings normalised, so a CRLF checkout is not "changed". */
  checksum: string;
}

const NAME = /^(\d{8}|\d{12})_[a-z0-9_]+$/;

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n'), 'utf8').digest('hex');
}

export function loadMigrationFiles(dir: string): MigrationFile[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    throw new MigrationError(`cannot read the migrations folder ${dir}`, { cause: err });
  }
  const files = entries.filter((entry) => entry.endsWith('.sql')).sort();
  return files.map((entry) => {
    const name = entry.slice(0, -'.sql'.length);
    if (!NAME.test(name)) {
      throw new MigrationError(`migration file ${entry} is not named YYYYMMDD[HHMM]_name.sql`, {
        hint: `rename it, or move it out of ${dir}`,
      });
    }
    const file = path.join(dir, entry);
    const sql = fs.readFileSync(file, 'utf8');
    return { name, file, sql, checksum: checksumOf(sql) };
  });
}

/** Accepts `20250831_ingest_hardening`, with or without `.sql`; anything else is a usage error. */
export function findMigration(files: MigrationFile[], wanted: string): MigrationFile {
  const name = path.basename(wanted).replace(/\.sql$/, '');
  const found = files.find((f) => f.name === name);
  if (!found) {
    throw new UsageError(`unknown migration "${wanted}"`, {
      hint: `known migrations: ${files.map((f) => f.name).join(', ')}`,
    });
  }
  return found;
}
