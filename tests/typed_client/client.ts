// A typed client of the service, written against types generated from its live OpenAPI
// document (`api.ts`, made by openapi-typescript next to this file). It must compile
// under `strict`, then run against the server: node dist/client.js BASE_URL API_KEY
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./api.js";

type Schemas = components["schemas"];
type FieldError = Schemas["FieldError"];
type ErrorBody = Schemas["ErrorBody"];
// Readable schema and operation names: these fail to compile if the names regress.
type JobList = Schemas["JobListResponse"]["data"];
type AddJob = operations["addJob"]["requestBody"]["content"]["application/json"];
type QueueStats = operations["getQueueStats"]["responses"][200]["content"]["application/json"];
type NotFound = operations["getJob"]["responses"][404]["content"]["application/json"];

declare const process: { argv: string[]; exitCode?: number };

const [baseUrl, apiKey] = process.argv.slice(2);
const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });

async function main(): Promise<void> {
  const body: AddJob = { name: "typed", data: { from: "typescript" }, options: { attempts: 2 } };
  const queue = { queueName: "t-idle" };
  const added = await api.POST("/api/queues/{queueName}/jobs", { params: { path: queue }, body });
  if (!added.data) throw new Error(`add failed: ${JSON.stringify(added.error)}`);
  const jobId: string = added.data.jobId;

  const listed = await api.GET("/api/queues/{queueName}/jobs", {
    params: { path: queue, query: { status: "waiting", end: 999 } },
  });
  const jobs: JobList = listed.data?.data ?? [];

  const stats = await api.GET("/api/queues/{queueName}/stats", { params: { path: queue } });
  const counts: QueueStats | undefined = stats.data;

  const missing = await api.GET("/api/queues/{queueName}/jobs/{jobId}", {
    params: { path: { ...queue, jobId: "no-such-job" } },
  });
  const notFound: NotFound | undefined = missing.error;

  const bad = await api.POST("/api/queues/{queueName}/jobs/bulk", {
    params: { path: { queueName: "t-basic" } },
    body: { jobs: [{ data: { value: 1 } }, { data: { value: 2 } }, { data: { value: "x" } }] },
  });
  const error: ErrorBody | undefined = bad.error;
  const fields: FieldError[] = error?.details ?? [];

  // @ts-expect-error: the generated types know `delay` is a number.
  const wrong: AddJob = { data: {}, options: { delay: "soon" } };
  void wrong;

  console.log(
    JSON.stringify({
      jobId,
      listed: jobs.some((job) => job.id === jobId),
      waiting: counts?.data.waiting,
      notFound: notFound?.code,
      badStatus: bad.response.status,
      badCode: error?.code,
      fields: fields.map((f) => f.field),
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
