// Node's BullMQ worker, the baseline of bench/worker_throughput.py. One process per run:
//   1. drains the warm-up batch the parent already added (JIT and connections warm up),
//   2. pauses and prints {"phase":"paused"}; the parent adds the timed batch and reads
//      Redis's counters, then writes "go",
//   3. resumes and prints {"phase":"done", jobs, seconds, jobsPerSecond} when the last timed
//      job completes (the clock runs from resume to that completion),
//   4. waits for "close" (the parent reads Redis's counters again first), then exits.
// Every engine runs with BullMQ's per-minute metrics on, as kk's worker pool does (the same
// Redis work per job: the metrics are two commands inside moveToFinished).
// Usage: node worker-bench.mjs <redisUrl> <prefix> <queue> <warmupJobs> <timedJobs> <concurrency>
//        <metricsDataPoints>
import { createInterface } from "node:readline";
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [redisUrl, prefix, queueName, warmupArg, jobsArg, concArg, metricsArg] =
  process.argv.slice(2);
const warmup = Number(warmupArg);
const total = Number(jobsArg);
const u = new URL(redisUrl);
const opts =
  u.protocol === "unix:"
    ? { path: u.pathname }
    : { host: u.hostname, port: Number(u.port), password: decodeURIComponent(u.password) || undefined };
const connection = new IORedis({ ...opts, maxRetriesPerRequest: null });

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expect(word) {
  const { value, done } = await lines.next();
  if (done || value.trim() !== word) throw new Error(`expected ${word}, got ${value}`);
}

let done = 0;
let target = warmup;
let reached = () => {};
const worker = new Worker(queueName, async () => null, {
  connection,
  prefix,
  concurrency: Number(concArg),
  removeOnComplete: { count: 0 },
  metrics: { maxDataPoints: Number(metricsArg) },
});
worker.on("completed", () => {
  done += 1;
  if (done === target) reached(performance.now());
});
const reach = (count) =>
  new Promise((resolve) => {
    target = count;
    reached = resolve;
    if (done >= count) resolve(performance.now());
  });

if (warmup > 0) await reach(warmup);
await worker.pause();
console.log(JSON.stringify({ phase: "paused", warmup: done }));
await expect("go");
done = 0;
const timed = reach(total);
const started = performance.now();
await worker.resume();
const seconds = ((await timed) - started) / 1000;
console.log(JSON.stringify({ phase: "done", jobs: total, seconds, jobsPerSecond: total / seconds }));
await expect("close");
await worker.close();
connection.disconnect();
process.exit(0);
