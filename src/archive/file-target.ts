// `file://<dir>`: objects are files under the folder. A file is written under a temporary name,
// flushed to disk, then renamed into place, so a reader (or a process killed mid-write) never
// sees half an object under the real name.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from '../errors.js';
import { ArchiveObjectMissingError, ArchiveTargetError } from './errors.js';
import type { ArchiveTarget } from './store.js';

function fail(what: string, uri: string, err: unknown): ArchiveTargetError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT' && what === 'cannot read')
    return new ArchiveObjectMissingError(`${uri} not found`, { cause: err });
  return new ArchiveTargetError(`${what} ${uri}: ${errorMessage(err)}`, { cause: err, hint: 'is the folder there and writable?' });
}

/** The folder itself if it is there, else the nearest folder above it that is (where mkdir would start). */
async function nearestExisting(dir: string): Promise<string> {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      await fs.promises.stat(d);
      return d;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(d) === d) throw err;
    }
  }
}

/** Flushes a file (or a folder's entry list) to disk. */
async function sync(file: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await fs.promises.open(file, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function atomicWrite(file: string, write: (tmp: string) => Promise<void>): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await write(tmp);
    await sync(tmp, 'r+');
    await fs.promises.rename(tmp, file);
    await sync(path.dirname(file), 'r');
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

async function walk(dir: string, base: string): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(full, base)));
    else if (e.isFile() && !/\.tmp-\d+-[0-9a-f]+$/.test(e.name)) out.push(path.relative(base, full).split(path.sep).join('/'));
  }
  return out;
}

export function fileTarget(dir: string, uri: string): ArchiveTarget {
  const fileOf = (key: string) => path.join(dir, ...key.split('/'));
  const objectUri = (key: string) => `${uri.replace(/\/$/, '')}/${key}`;
  return {
    uri,
    objectUri,
    async write(key, body) {
      try {
        await atomicWrite(fileOf(key), (tmp) => pipeline(body, fs.createWriteStream(tmp)));
      } catch (err) {
        throw fail('cannot write', objectUri(key), err);
      }
    },
    async put(key, data) {
      try {
        await atomicWrite(fileOf(key), (tmp) => fs.promises.writeFile(tmp, data));
      } catch (err) {
        throw fail('cannot write', objectUri(key), err);
      }
    },
    async read(key) {
      const file = fileOf(key);
      try {
        await fs.promises.access(file, fs.constants.R_OK);
      } catch (err) {
        throw fail('cannot read', objectUri(key), err);
      }
      return fs.createReadStream(file);
    },
    async remove(key) {
      try {
        await fs.promises.rm(fileOf(key), { force: true });
      } catch (err) {
        throw fail('cannot remove', objectUri(key), err);
      }
    },
    async list(prefix) {
      try {
        return (await walk(fileOf(prefix), dir)).sort();
      } catch (err) {
        throw fail('cannot list', objectUri(prefix), err);
      }
    },
    async probe() {
      try {
        const there = await nearestExisting(dir);
        if (!(await fs.promises.stat(there)).isDirectory()) throw new Error(`${there} is not a folder`);
        await fs.promises.access(there, fs.constants.W_OK | fs.constants.X_OK);
      } catch (err) {
        throw fail('cannot write', uri, err);
      }
    },
  };
}
