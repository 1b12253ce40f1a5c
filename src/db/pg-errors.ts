// The one place where PostgreSQL and driver errors become omni-ingest errors.
import { BusyError, DatabaseConfigError, DatabaseError, OmniError } from '../errors.js';

interface PgLikeError {
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

const INSTALL_PGVECTOR =
  'install pgvector on the server: `sudo bash scripts/install-pgvector.sh` (Debian/Ubuntu), ' +
  "your distribution's postgresql-<major>-pgvector package, or https://github.com/pgvector/pgvector#installation; " +
  'on Supabase enable the "vector" extension in the dashboard';

/**
 * Two transactions wanted the same rows in an order that cannot both commit (deadlock,
 * serialization failure): the loser rolled back whole and may simply run again.
 */
export const CLASH_STATES: ReadonlySet<string> = new Set(['40P01', '40001']);

/**
 * The connection, not the statement, failed: the server shut down or restarted, an operator or
 * a failover terminated the backend, the link broke. The transaction rolled back; a new
 * connection may run it again.
 */
const SHUTDOWN_STATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03']);

/** Class 08 (connection exception: what a pooler says when its server connection died too) or a shutdown. */
const connectionLost = (code: string): boolean => code.startsWith('08') || SHUTDOWN_STATES.has(code);

/**
 * A pooler (PgBouncer) answers a login it cannot serve with 08P01 rather than the server's own
 * code: the words say which. Neither is a lost connection to retry; both are a URL to fix.
 */
function poolerLoginState(code: string, message: string): '3D000' | '28000' | undefined {
  if (code !== '08P01') return undefined;
  if (/database ".*" does not exist|no such database/i.test(message)) return '3D000';
  if (/authentication failed|no such user|role ".*" does not exist/i.test(message)) return '28000';
  return undefined;
}

function isPgLike(err: unknown): err is PgLikeError & Error {
  return err instanceof Error && typeof (err as PgLikeError).code === 'string';
}

/**
 * The database pushing back on a batch rather than refusing it: a lock or statement timeout, a
 * serialization failure or deadlock. The transaction rolled back whole; the same work, smaller
 * and a little later, may well pass (the adaptive batch size backs off on these).
 */
export type Pushback = 'lock-timeout' | 'statement-timeout' | 'serialization' | 'deadlock';

const PUSHBACK_STATES: Readonly<Record<string, Pushback>> = {
  '55P03': 'lock-timeout', // lock_not_available: lock_timeout ran out (or NOWAIT)
  '57014': 'statement-timeout', // query_canceled: statement_timeout (or a cancel request)
  '40001': 'serialization',
  '40P01': 'deadlock',
};

/** Which pushback an error is, by its SQLSTATE (a mapped error keeps the driver's in its cause). */
export function pushbackOf(err: unknown): Pushback | undefined {
  const state = err instanceof DatabaseError ? err.sqlState : undefined;
  const cause = err instanceof OmniError && isPgLike(err.cause) ? err.cause.code : undefined;
  const code = state ?? cause ?? (isPgLike(err) ? err.code : undefined);
  return code === undefined ? undefined : PUSHBACK_STATES[code];
}

/**
 * Turns whatever the driver threw into an OmniError. `target` is the masked URL or data folder,
 * used to say where we were trying to go.
 */
export function mapPgError(err: unknown, target: string): OmniError {
  if (err instanceof OmniError) return err;
  if (!isPgLike(err)) {
    const message = err instanceof Error ? err.message : String(err);
    // The driver's words for a connection that died under it (the server, a pooler or the network dropped it).
    if (/terminated unexpectedly|connection terminated|not queryable|ECONNRESET/i.test(message)) {
      return new DatabaseError(`connection to ${target} lost: ${message}`, { cause: err, code: 'connection' });
    }
    if (/connection timeout/i.test(message)) {
      return new DatabaseError(`no answer from PostgreSQL at ${target} in time: ${message}`, {
        cause: err,
        code: 'connection',
        hint: 'is the host reachable and the server (or pooler) up? A pooler that just refused a login to a database holds further logins to it for a while (PgBouncer: server_login_retry)',
      });
    }
    if (/unexpected message|invalid response/i.test(message)) {
      return new DatabaseError(`could not talk to PostgreSQL at ${target}: ${message}`, {
        cause: err,
        code: 'connection',
        hint: 'is this a PostgreSQL server? check the host and port of the URL',
      });
    }
    return new DatabaseError(`database error at ${target}: ${message}`, { cause: err });
  }
  const message = err.message ?? String(err);
  const pooler = poolerLoginState(err.code ?? '', message);
  const code = pooler ?? err.code ?? '';
  const detail = err.detail ? ` (${err.detail})` : '';
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ECONNRESET':
      return new DatabaseError(`cannot connect to PostgreSQL at ${target}: ${code}`, {
        cause: err,
        code: 'connection',
        hint: 'is the server running and the URL right? Without --database-url/DATABASE_URL the embedded database is used',
      });
    case 'EPIPE':
    case 'ENOTCONN':
    case 'ECONNABORTED':
      // The socket went away under a write: the other end (server, pooler, network) dropped it.
      return new DatabaseError(`connection to ${target} lost: ${message}`, { cause: err, code: 'connection' });
    case '28P01':
    case '28000':
      return new DatabaseConfigError(`authentication failed at ${target}: ${message}`, {
        cause: err,
        sqlState: code,
        code: 'auth',
        hint: /role .* does not exist/i.test(message)
          ? 'fix the user name in --database-url / DATABASE_URL, or create the role on the server'
          : `check the user and password in --database-url / DATABASE_URL (and ${pooler ? "the pooler's user list, PgBouncer's auth_file" : 'pg_hba.conf on the server'})`,
      });
    case '3D000':
      // Not 'connection': that code means "lost, reconnect and retry", which cannot help here.
      return new DatabaseConfigError(`database does not exist at ${target}: ${message}`, {
        cause: err,
        sqlState: code,
        code: 'no_database',
        hint: 'fix the database name in --database-url / DATABASE_URL, or create it first (createdb)',
      });
    case '0A000':
    case '58P01':
    case '42704':
      if (/vector/i.test(message)) {
        return new DatabaseError(`pgvector is not available on the server at ${target}: ${message}`, {
          cause: err,
          sqlState: code,
          code: 'pgvector_missing',
          hint: INSTALL_PGVECTOR,
        });
      }
      break;
    case '55P03':
      return new BusyError(`a lock is held by another session at ${target}: ${message}`, {
        cause: err,
        hint: 'another omni-ingest (or a long transaction) holds it; retry later',
      });
    case '57014':
      return new DatabaseError(`statement cancelled at ${target}: ${message}`, { cause: err, sqlState: code, code: 'timeout' });
    case '42501':
      return new DatabaseError(`permission denied at ${target}: ${message}`, {
        cause: err,
        sqlState: code,
        code: 'permission',
        hint: 'connect as the table owner or a role with the needed privileges (service_role on Supabase)',
      });
    default:
      if (connectionLost(code))
        return new DatabaseError(`connection to ${target} lost: ${message}`, { cause: err, sqlState: code, code: 'connection' });
      break;
  }
  return new DatabaseError(`${message}${detail}`, {
    cause: err,
    sqlState: /^[0-9A-Z]{5}$/.test(code) ? code : undefined,
    ...(err.hint ? { hint: err.hint } : {}),
  });
}

export const pgvectorInstallHint = INSTALL_PGVECTOR;
