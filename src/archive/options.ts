// The S3 settings of an archive command, flags over environment over defaults, through zod
// like every other setting (config.ts). Credentials are never settings of ours: the SDK's own
// chain finds them (environment, shared files, instance roles), and nothing here prints them.
import { z } from 'zod';
import { maskUrl } from '../config.js';
import { ConfigError } from '../errors.js';

export interface S3Options {
  /** An S3-compatible endpoint (MinIO, R2, s3rver); undefined: AWS. */
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
}

export interface S3Flags {
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  s3ForcePathStyle?: boolean | undefined;
}

const endpoint = z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' });
const region = z
  .string()
  .trim()
  .regex(/^[a-z0-9-]{2,32}$/, 'must be a region name such as us-east-1');
const yesNo = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'], { message: 'must be 1/true/yes/on or 0/false/no/off' }))
  .transform((s) => ['1', 'true', 'yes', 'on'].includes(s));

function pick<T>(schema: z.ZodType<T>, names: string, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const shown = typeof raw === 'string' ? ` "${maskUrl(raw) === '<unparseable url>' ? raw : maskUrl(raw)}"` : '';
  throw new ConfigError(`invalid ${names}${shown}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
}

const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);

export function resolveS3Options(flags: S3Flags, env: Record<string, string | undefined> = process.env): S3Options {
  const rawEndpoint = flags.s3Endpoint ?? blank(env.AWS_ENDPOINT_URL_S3) ?? blank(env.AWS_ENDPOINT_URL);
  const rawRegion = flags.s3Region ?? blank(env.AWS_REGION) ?? blank(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
  const rawPathStyle = blank(env.OMNI_INGEST_S3_FORCE_PATH_STYLE);
  return {
    endpoint: rawEndpoint === undefined ? undefined : pick(endpoint, '--s3-endpoint / AWS_ENDPOINT_URL', rawEndpoint),
    region: pick(region, '--s3-region / AWS_REGION', rawRegion),
    forcePathStyle:
      flags.s3ForcePathStyle === true || (rawPathStyle !== undefined && pick(yesNo, 'OMNI_INGEST_S3_FORCE_PATH_STYLE', rawPathStyle)),
  };
}
