// `npm run bench -- <name> [options]`. Benchmarks make their own data on the real server
// (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local postgres) and print their figures.
import { parseArgs } from 'node:util';
import { UsageError } from '../src/errors.js';
import { benchArchive, printArchive } from './archive.js';
import { batchAutoBenchOptions, benchBatchAuto, printBatchAuto } from './batch-auto.js';
import { embedBenchOptions, runEmbedBench } from './embed.js';
import { benchErrors, errorsBenchOptions, printErrors } from './errors.js';
import { benchImport, importBenchOptions, printImport } from './import.js';
import { benchNormalize, normalizeBenchOptions, normalizeBenchOptionsFrom } from './normalize.js';
import { printNormalize } from './normalize-print.js';
import { benchRetry, printRetry, retryBenchOptions } from './retry.js';
import { benchSwap, printSwap, swapBenchOptions } from './swap.js';

const usage = `usage: npm run bench -- <benchmark> [options]

benchmarks and their options (see README.md, "Benchmarks", for what each measures):
  normalize  [--provider gmail|twilio|instagram|webform|all] [--events N | --sizes N,N] [--workers 1,2] [--batch-size auto|N] [--rounds 1]
  embed      [--chunks N | --sizes N,N] [--latency ms] [--concurrency N] [--batch N] [--workers N] [--batch-size N]
  swap       --rows N [--workers N] [--batch-size N] [--m 16] [--ef-construction 64] [--maintenance-work-mem 2GB]
  errors     --letters N [--keep]
  retry      --errors N [--batch-size N] [--rounds 3]
  archive    --events N [--batch-size N] [--workers N]
  batch-auto [--sms N] [--emails N] [--rounds 3]
  import     --events N [--sizes N,N] [--provider twilio] [--compare <checkout>]

every benchmark takes --json; the server is BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local postgres
`;

function parsed() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        events: { type: 'string', default: '200000' },
        // No defaults: each benchmark has its own (normalize: workers 1,2 and batch size auto).
        workers: { type: 'string' },
        'batch-size': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        ...normalizeBenchOptions,
        ...embedBenchOptions,
        ...swapBenchOptions,
        ...retryBenchOptions,
        ...errorsBenchOptions,
        ...batchAutoBenchOptions,
        ...importBenchOptions,
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}
/** A bad option value is said in one line with the usage (exit 2), not thrown with a stack. */
function usageChecked<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}`);
    process.exitCode = 2;
    return undefined;
  }
}

const { positionals, values } = parsed();
const serverUrl = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const name = positionals[0] ?? 'normalize';
const workers = Number(values.workers ?? 2);
const batchSize = Number(values['batch-size'] ?? 1000);

if (values.help) {
  process.stdout.write(usage);
} else if (name === 'normalize') {
  const options = usageChecked(() => normalizeBenchOptionsFrom(values, serverUrl));
  if (options) {
    const rows = await benchNormalize(options);
    process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${printNormalize(rows)}\n`);
  }
} else if (name === 'embed') {
  process.stdout.write(await runEmbedBench(values, serverUrl));
} else if (name === 'swap') {
  const result = await benchSwap({
    serverUrl,
    rows: Number(values.rows),
    workers,
    batchSize,
    m: Number(values.m),
    efConstruction: Number(values['ef-construction']),
    maintenanceWorkMem: values['maintenance-work-mem'],
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${printSwap(result)}\n`);
} else if (name === 'retry') {
  const result = await benchRetry({ serverUrl, errors: Number(values.errors), batchSize, rounds: Number(values.rounds ?? 3) });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${printRetry(result)}\n`);
} else if (name === 'errors') {
  const result = await benchErrors(serverUrl, Number(values.letters), values.keep);
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${printErrors(result)}\n`);
} else if (name === 'archive') {
  const rows = await benchArchive({
    serverUrl,
    events: Number(values.events),
    batchSize: Number(values['batch-size'] ?? 10_000),
    workers,
  });
  process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${printArchive(rows)}\n`);
} else if (name === 'batch-auto') {
  const rows = await benchBatchAuto({
    serverUrl,
    sms: Number(values.sms),
    emails: Number(values.emails),
    rounds: Number(values.rounds ?? 3),
  });
  process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${printBatchAuto(rows)}\n`);
} else if (name === 'import') {
  const rows = await benchImport({
    serverUrl,
    events: Number(values.events),
    sizes: values.sizes,
    provider: values.provider === 'all' ? 'twilio' : values.provider,
    compare: values.compare,
  });
  process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${printImport(rows, values.compare)}\n`);
} else {
  process.stderr.write(`unknown benchmark "${name}"\n\n${usage}`);
  process.exitCode = 2;
}
