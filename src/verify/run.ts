import type { Db, Queryable } from '../db/connect.js';
import { readCatalog } from './catalog.js';
import { judge, type CheckResult } from './checks.js';
import { deepChecks, type DeepOptions } from './deep.js';

/**
 * Checks the live database against every promise of SPEC §3.2, and the tool's own objects. The
 * catalog is read with only pg_catalog on the search_path, so every name outside it prints
 * qualified (`auth.uid()`, never `uid()` because a session had `auth` on its path): the checks
 * judge meaning, not a session.
 */
export async function runChecks(db: Db | Queryable, options: DeepOptions = {}): Promise<CheckResult[]> {
  const read = async (tx: Queryable) => {
    await tx.query(`SELECT set_config('search_path', 'pg_catalog, pg_temp', true)`);
    return readCatalog(tx);
  };
  // A caller already in a transaction (tests that break the schema and roll back) reads in it.
  const catalog = 'transaction' in db ? await db.transaction(read) : await read(db);
  return [...judge(catalog), ...(await deepChecks(db, options))];
}
