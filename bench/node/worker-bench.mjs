// Node's BullMQ worker on a queue already filled with no-op jobs: prints jobs/s as JSON.
// Usage: node worker-bench.mjs <redisUrl> <prefix> <queue> <jobs> <concurrency>
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [redisUrl, prefix, queueName, jobsArg, concArg] = process.argv.slice(2);
const total = Number(jobsArg);
const u = new URL(redisUrl);
const opts = u.protocol === "unix:" ? { path: u.pathname } : { host: u.hostname, port: Number(u.port) };
const connection = new IORedis({ ...opts, maxRetriesPerRequest: null });

let done = 0;
let started = 0;
const finished = new Promise((resolve) => {
  const worker = new Worker(queueName, async () => {
    if (!started) started = performance.now();
    return null;
  }, { connection, prefix, concurrency: Number(concArg), removeOnComplete: { count: 0 } });
  worker.on("completed", async () => {
    done += 1;
    if (done === total) {
      const seconds = (performance.now() - started) / 1000;
      await worker.close();
      resolve(seconds);
    }
  });
});
const seconds = await finished;
console.log(JSON.stringify({ jobs: total, seconds, jobsPerSecond: total / seconds }));
connection.disconnect();
process.exit(0);
