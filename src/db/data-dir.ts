// The embedded database's folder: what may be opened, what may be created, and the lock that
// keeps a second process out. A folder that is not a PGlite database is refused before PGlite
// sees it: PGlite would otherwise initialise a database among someone's files, or fail with an
// error object that prints as "[object Object]".
import fs from 'node:fs';
import path from 'node:path';
import { BusyError, ConfigError } from '../errors.js';
import { isAlive } from '../liveness.js';
import { loadMigrationFiles } from '../migrate/files.js';
import { migrationsDir } from '../paths.js';

const NAMES = '--data-dir / OMNI_INGEST_DATA_DIR';

/** `database`: a PGlite folder; `absent`: nothing there yet (or an empty folder). */
type DataDirState = 'database' | 'absent';

/** What is at `dataDir`; anything that cannot become the embedded database is a ConfigError. */
export function inspectDataDir(dataDir: string): DataDirState {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dataDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'absent';
    if (code === 'ENOTDIR') throw new ConfigError(`${NAMES}: ${dataDir} is inside a file, not a folder`, { hint: hintOf() });
    throw new ConfigError(`${NAMES}: cannot read ${dataDir} (${code ?? String(err)})`, { hint: hintOf() });
  }
  if (!stat.isDirectory()) {
    throw new ConfigError(`${NAMES}: ${dataDir} is ${stat.isFile() ? 'a file' : 'a device or special file'}, not a folder`, {
      hint: hintOf(),
    });
  }
  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) return 'database';
  if (fs.readdirSync(dataDir).length === 0) return 'absent';
  throw new ConfigError(`${NAMES}: ${dataDir} is a folder of other files, not an embedded database`, { hint: hintOf() });
}

function hintOf(): string {
  return 'point --data-dir (or OMNI_INGEST_DATA_DIR) at a new or empty folder, or at an embedded database; or use --database-url';
}

/** Where there is no database yet and the command must not make one: the same words as an empty server database's. */
export function noDatabaseError(dataDir: string): ConfigError {
  const total = loadMigrationFiles(migrationsDir).length;
  return new ConfigError(
    `the database is not migrated (0 of ${total} applied; there is no embedded database in ${dataDir} yet): run \`omni-ingest migrate\``,
    {
      hint: `migrate creates it there; if your database is elsewhere, point ${NAMES} (or --database-url) at it`,
    },
  );
}

/** Two processes must never open one PGlite folder: it would corrupt it. */
export function lockDataDir(dataDir: string): () => void {
  const lockPath = `${dataDir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EPERM')
        throw new ConfigError(`cannot use ${dataDir} for the embedded database: ${code} on ${lockPath}`, {
          cause: err,
          hint: `give a folder whose parent exists and can be written (${NAMES}), or a real server (--database-url)`,
        });
      if (code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new BusyError(`the embedded database at ${dataDir} is in use by process ${pid}`, {
          hint: 'wait for it to finish, or use a real server (--database-url) to run several processes at once',
        });
      }
      fs.rmSync(lockPath, { force: true }); // left behind by a process that died
    }
  }
  throw new BusyError(`could not lock the embedded database at ${dataDir}`);
}
