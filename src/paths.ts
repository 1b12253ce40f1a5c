// Where the package's own files are, whether running from dist/ or from a global install.
import { fileURLToPath } from 'node:url';

/** The package root: compiled files live in dist/src/, two levels below it. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));
