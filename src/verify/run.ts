import type { Queryable } from '../db/connect.js';
import { readCatalog } from './catalog.js';
import { judge, type CheckResult } from './checks.js';

/** Checks the live database against every promise of SPEC §3.2. */
export async function runChecks(db: Queryable): Promise<CheckResult[]> {
  return judge(await readCatalog(db));
}
