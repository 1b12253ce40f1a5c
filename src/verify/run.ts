import type { Queryable } from '../db/connect.js';
import { readCatalog } from './catalog.js';
import { judge, type CheckResult } from './checks.js';
import { deepChecks, type DeepOptions } from './deep.js';

/** Checks the live database against every promise of SPEC §3.2, and the tool's own objects. */
export async function runChecks(db: Queryable, options: DeepOptions = {}): Promise<CheckResult[]> {
  return [...judge(await readCatalog(db)), ...(await deepChecks(db, options))];
}
