// Node's BullMQ on our queues: `add`, `read` a job, or `work` one job with a Node worker.
// Usage: node bullmq-cli.mjs <add|read|work> <redisUrl> <prefix> <queue> [jobId|name] [json]
import { Queue, Worker, Job } from "bullmq";
import IORedis from "ioredis";

const [cmd, redisUrl, prefix, queueName, arg, json] = process.argv.slice(2);

function connectionFrom(url) {
  const u = new URL(url);
  if (u.protocol === "unix:") return { path: u.pathname, maxRetriesPerRequest: null };
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    db: Number((u.pathname || "/0").slice(1) || 0),
    password: u.password || undefined,
    maxRetriesPerRequest: null,
  };
}

// BullMQ 6 wants a constructed client in native ESM.
const connection = new IORedis(connectionFrom(redisUrl));
const queue = new Queue(queueName, { connection, prefix });

async function main() {
  if (cmd === "add") {
    const job = await queue.add(arg, JSON.parse(json || "{}"));
    console.log(JSON.stringify({ id: job.id }));
  } else if (cmd === "read") {
    const job = await Job.fromId(queue, arg);
    const state = job ? await job.getState() : null;
    const counts = await queue.getJobCounts("waiting", "completed", "failed", "delayed");
    console.log(JSON.stringify({ job: job && { id: job.id, name: job.name, data: job.data,
      opts: job.opts, returnvalue: job.returnvalue }, state, counts }));
  } else if (cmd === "work") {
    const done = new Promise((resolve, reject) => {
      const worker = new Worker(queueName, async (job) => ({ seenByNode: job.data }), {
        connection: new IORedis(connectionFrom(redisUrl)), prefix, autorun: true,
      });
      worker.on("completed", async (job, result) => {
        if (job.id === arg) { await worker.close(); resolve(result); }
      });
      worker.on("failed", (job, err) => reject(err));
      setTimeout(() => reject(new Error("timeout")), 15000);
    });
    console.log(JSON.stringify(await done));
  } else {
    throw new Error(`unknown command ${cmd}`);
  }
}

main().then(
  async () => { await queue.close(); connection.disconnect(); process.exit(0); },
  async (err) => { console.error(err); await queue.close(); process.exit(1); },
);
