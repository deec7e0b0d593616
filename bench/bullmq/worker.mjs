// BullMQ side of bench/timer_bench.py: delayed jobs used as webhook timers.
//
//   node worker.mjs produce --redis-port P --queue Q (--file jobs.json | --count N --id-prefix p
//        --first-due-ms T --step-us S) [--concurrency 64] [--bulk 0] [--max-seconds 600]
//     Adds one delayed job per timer: jobId = the timer's id, delay = due - now (opts.timestamp
//     is that same now, so the job is due at exactly due_ms). --bulk K > 0 uses queue.addBulk
//     with K jobs a call instead of one queue.add per job. jobs.json: {"jobs": [[id, due_ns], ...]}
//     with due_ns a decimal string (epoch nanoseconds; a whole millisecond for BullMQ).
//     Prints one JSON line: added, errors, seconds, adds_per_s, add latency.
//   node worker.mjs work --redis-port P --queue Q --url http://127.0.0.1:R/hook
//        [--concurrency 100] [--max-seconds 3600]
//     A Worker whose processor POSTs to <url>/<jobId> (fetch, keep-alive) with the headers
//     Bench-Due-Nanos, Bench-Attempt and Idempotency-Key; a non-2xx answer fails the attempt.
//     Prints {"event":"ready"} once connected, and a summary line when stopped (SIGTERM/SIGINT,
//     or --max-seconds).
//   node worker.mjs counts --redis-port P --queue Q
//     Prints the queue's job counts as JSON.
//
// Redis is always 127.0.0.1 (the benchmark starts its own instance). Exits non-zero on errors.
import { Queue, Worker } from 'bullmq';
import { readFileSync } from 'node:fs';

function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      out[a.slice(2)] = argv[i + 1];
      i++;
    } else {
      out._.push(a);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const mode = args._[0];
const connection = { host: '127.0.0.1', port: Number(args['redis-port'] || 6379) };
const queueName = args.queue || 'timers';
const maxSeconds = Number(args['max-seconds'] || 3600);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))));
  return Math.round(sorted[k] * 1000) / 1000;
}

// Each timer as [id, due_ms, due_ns string].
function loadJobs() {
  if (args.file) {
    const data = JSON.parse(readFileSync(args.file, 'utf8'));
    return data.jobs.map(([id, dueNs]) => [id, Number(BigInt(dueNs) / 1000000n), String(dueNs)]);
  }
  const n = Number(args.count);
  const prefix = args['id-prefix'] || 'b';
  const first = Number(args['first-due-ms']);
  const stepUs = Number(args['step-us'] || 1000);
  const jobs = new Array(n);
  for (let i = 0; i < n; i++) {
    const dueMs = Math.round(first + (i * stepUs) / 1000);
    jobs[i] = [`${prefix}${i}`, dueMs, `${BigInt(dueMs) * 1000000n}`];
  }
  return jobs;
}

const jobOpts = {
  attempts: 10, // Synod's default: 10 attempts, exponential backoff from 1 s
  backoff: { type: 'exponential', delay: 1000 },
};

async function produce() {
  const jobs = loadJobs();
  const queue = new Queue(queueName, { connection });
  await queue.waitUntilReady();
  const concurrency = Number(args.concurrency || 64);
  const bulk = Number(args.bulk || 0);
  const deadline = Date.now() + maxSeconds * 1000;
  let next = 0;
  let added = 0;
  let errors = 0;
  let firstError = null;
  const lat = [];
  const t0 = performance.now();
  async function loop() {
    while (next < jobs.length && Date.now() < deadline) {
      if (bulk > 0) {
        const chunk = jobs.slice(next, next + bulk);
        next += chunk.length;
        const now = Date.now();
        const t = performance.now();
        try {
          await queue.addBulk(chunk.map(([id, dueMs, dueNs]) => ({
            name: 't', data: { due_ns: dueNs },
            opts: { ...jobOpts, jobId: id, timestamp: now, delay: Math.max(0, dueMs - now) },
          })));
          added += chunk.length;
          lat.push(performance.now() - t);
        } catch (e) {
          errors += chunk.length;
          firstError = firstError || String(e);
        }
      } else {
        const [id, dueMs, dueNs] = jobs[next++];
        const now = Date.now();
        const t = performance.now();
        try {
          await queue.add('t', { due_ns: dueNs },
            { ...jobOpts, jobId: id, timestamp: now, delay: Math.max(0, dueMs - now) });
          added++;
          lat.push(performance.now() - t);
        } catch (e) {
          errors++;
          firstError = firstError || String(e);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (performance.now() - t0) / 1000;
  await queue.close();
  lat.sort((a, b) => a - b);
  emit({
    mode: 'produce', jobs: jobs.length, added, errors, first_error: firstError,
    seconds: Math.round(seconds * 1000) / 1000,
    adds_per_s: Math.round((added / seconds) * 10) / 10,
    concurrency, bulk,
    call_latency_ms: { n: lat.length, p50: pct(lat, 50), p99: pct(lat, 99),
      max: lat.length ? Math.round(lat[lat.length - 1] * 1000) / 1000 : null },
    timed_out: next < jobs.length,
  });
}

async function work() {
  const url = args.url;
  const concurrency = Number(args.concurrency || 100);
  let completed = 0;
  let failed = 0;
  let firstError = null;
  const worker = new Worker(queueName, async (job) => {
    const res = await fetch(`${url}/${encodeURIComponent(job.id)}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Bench-Due-Nanos': String(job.data.due_ns),
        'Bench-Attempt': String(job.attemptsMade + 1),
        'Idempotency-Key': job.id,
      },
      body: JSON.stringify({ id: job.id, due_ns: job.data.due_ns }),
    });
    await res.arrayBuffer();
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
  }, { connection, concurrency });
  worker.on('completed', () => { completed++; });
  worker.on('failed', (_job, err) => { failed++; firstError = firstError || String(err); });
  worker.on('error', (err) => { firstError = firstError || String(err); });
  await worker.waitUntilReady();
  emit({ event: 'ready', pid: process.pid, concurrency });
  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    await worker.close();
    emit({ event: 'closed', why, completed, failed, first_error: firstError });
    process.exit(0);
  };
  const timer = setTimeout(() => stop('max-seconds'), maxSeconds * 1000);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function counts() {
  const queue = new Queue(queueName, { connection });
  const c = await queue.getJobCounts('delayed', 'waiting', 'active', 'completed', 'failed',
    'prioritized', 'paused');
  await queue.close();
  emit(c);
}

const modes = { produce, work, counts };
if (!modes[mode]) {
  process.stderr.write('usage: node worker.mjs produce|work|counts --redis-port P --queue Q ...\n');
  process.exit(2);
}
modes[mode]().catch((e) => {
  process.stderr.write(`${mode}: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
