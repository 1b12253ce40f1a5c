// `s3://<bucket>/<prefix>` on AWS or any S3-compatible endpoint. Parts stream through a
// multipart upload (lib-storage): an object appears only when the upload completes, and a killed
// upload leaves no object under the key. The manifest is one PUT. Credentials come from the SDK's
// own chain; errors name the bucket and key, never a secret.
import type { Readable } from 'node:stream';
import { maskUrl } from '../config.js';
import { errorMessage } from '../errors.js';
import { ArchiveObjectMissingError, ArchiveTargetError } from './errors.js';
import type { S3Options } from './options.js';
import { type ArchiveTarget, joinKey } from './store.js';

/** Parts of a multipart upload: S3's minimum is 5 MiB; two in flight keep memory flat. */
const PART_BYTES = 8 * 2 ** 20;
const QUEUE = 2;

/** A GET of a key that is not there (the bucket answered): not a failure to reach the target. */
function missing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket');
}

export async function s3Target(bucket: string, prefix: string, uri: string, o: S3Options): Promise<ArchiveTarget> {
  // The SDK warns on every Node < 22 about its releases of 2027; this version is pinned and
  // supports Node 20, and the notice would only clutter stderr of every archive run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [{ S3Client, PutObjectCommand, GetObjectCommand, DeleteObjectCommand, ListObjectsV2Command }, { Upload }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('@aws-sdk/lib-storage'),
  ]);
  const client = new S3Client({
    region: o.region,
    forcePathStyle: o.forcePathStyle,
    ...(o.endpoint
      ? {
          endpoint: o.endpoint,
          // S3-compatible servers often predate the SDK's default checksums (s3rver, older MinIO):
          // ask for them only where the API requires them; every part has our own SHA-256 anyway.
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
  });
  const where = o.endpoint ? ` (endpoint ${maskUrl(o.endpoint)})` : '';
  const keyOf = (key: string) => joinKey(prefix, key);
  const objectUri = (key: string) => `s3://${bucket}/${keyOf(key)}`;
  const fail = (what: string, key: string, err: unknown) =>
    missing(err)
      ? new ArchiveObjectMissingError(`${objectUri(key)} not found${where}`, { cause: err })
      : new ArchiveTargetError(`cannot ${what} ${objectUri(key)}${where}: ${errorMessage(err)}`, {
          cause: err,
          hint: 'check the bucket, the region (--s3-region), the endpoint (--s3-endpoint) and the credentials the AWS SDK finds',
        });
  return {
    uri,
    objectUri,
    async write(key, body) {
      try {
        const upload = new Upload({
          client,
          params: { Bucket: bucket, Key: keyOf(key), Body: body },
          partSize: PART_BYTES,
          queueSize: QUEUE,
        });
        await upload.done();
      } catch (err) {
        throw fail('write', key, err);
      }
    },
    async put(key, data) {
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: keyOf(key), Body: data, ContentType: 'application/json' }));
      } catch (err) {
        throw fail('write', key, err);
      }
    },
    async read(key) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(key) }));
        if (!out.Body) throw new Error('empty response');
        return out.Body as Readable;
      } catch (err) {
        throw fail('read', key, err);
      }
    },
    async remove(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(key) }));
      } catch (err) {
        // S3 answers a delete of a missing key with success; a server that says 404 means the same.
        if (!missing(err)) throw fail('remove', key, err);
      }
    },
    async list(sub) {
      const keys: string[] = [];
      const base = prefix ? `${prefix}/` : '';
      const under = keyOf(sub) ? `${keyOf(sub)}/` : '';
      let token: string | undefined;
      try {
        do {
          const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: under, ContinuationToken: token }));
          for (const c of page.Contents ?? []) if (c.Key) keys.push(c.Key.slice(base.length));
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw fail('list', sub, err);
      }
      return keys.sort();
    },
    async probe() {
      try {
        await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix ? `${prefix}/` : '', MaxKeys: 1 }));
      } catch (err) {
        throw fail('list', '', err);
      }
    },
  };
}
