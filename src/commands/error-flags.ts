// The flags every `errors` command selects dead letters with, parsed one way for all of them.
import type { Command } from 'commander';
import type { Clock } from '../clock.js';
import { ERROR_STAGES, ERROR_STATUSES, type ErrorSelection, type ErrorStatus, signatureSchema } from '../dead-letters/select.js';
import { UsageError } from '../errors.js';
import { nonEmpty, oneOf, parseFlags, parseInstant, uuidFlag } from './flags.js';

export interface SelectionFlags {
  stage?: string;
  provider?: string;
  user?: string;
  since?: string;
  until?: string;
  status?: string;
  signature?: string;
}

/** Declares the selection flags on a command; `statusDefault` is said in the help. */
export function selectionOptions(cmd: Command, statusDefault: string): Command {
  return cmd
    .option('--stage <stage>', `only this stage's errors (${ERROR_STAGES.join(', ')})`)
    .option('--provider <name>', 'only this provider (gmail, twilio, instagram, webform)')
    .option('--user <uuid>', "only this user's errors")
    .option('--since <date|duration>', 'only errors last seen at or after this time (ISO 8601, or 7d, 24h back)')
    .option('--until <date|duration>', 'only errors last seen before this time')
    .option('--status <status>', `${ERROR_STATUSES.join(', ')} or all (default: ${statusDefault})`)
    .option('--signature <sig>', 'only this group (the signature `errors groups` shows)');
}

function instant(clock: Clock, flag: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const at = parseInstant(text, clock);
  if (typeof at === 'string') throw new UsageError(`${flag} "${text}" ${at}`);
  return at;
}

/** Error ids given as arguments: each must be a UUID. */
function parseErrorIds(args: string[]): string[] {
  return args.map((text) => {
    const parsed = uuidFlag.safeParse(text);
    if (!parsed.success) throw new UsageError(`"${text}" is not an error id (a UUID from \`omni-ingest errors list\`)`);
    return parsed.data;
  });
}

export function parseSelection(flags: SelectionFlags, ids: string[], clock: Clock, statusDefault: ErrorStatus[] | 'all'): ErrorSelection {
  const f = parseFlags(
    {
      stage: oneOf(ERROR_STAGES),
      provider: nonEmpty,
      user: uuidFlag,
      signature: signatureSchema,
    },
    flags,
  );
  const since = instant(clock, '--since', flags.since);
  const until = instant(clock, '--until', flags.until);
  if (since && until && since >= until)
    throw new UsageError(`--since (${since.toISOString()}) must be before --until (${until.toISOString()})`);
  let statuses: ErrorStatus[] | undefined;
  const status = flags.status?.trim();
  if (status === undefined) statuses = statusDefault === 'all' ? undefined : statusDefault;
  else if (status === 'all') statuses = undefined;
  else if ((ERROR_STATUSES as readonly string[]).includes(status)) statuses = [status as ErrorStatus];
  else throw new UsageError(`--status "${flags.status}" is not one of ${ERROR_STATUSES.join(', ')}, all`);
  return {
    ids: parseErrorIds(ids),
    stage: f.stage,
    provider: f.provider,
    userId: f.user,
    since,
    until,
    statuses,
    signature: f.signature,
  };
}
