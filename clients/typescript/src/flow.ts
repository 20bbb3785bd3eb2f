// End to end through a client typed by the generated schema: topic, produce, fetch, consumer group, clean up.
// Usage: GATEWAY_URL=http://127.0.0.1:8080 npm run flow
import { isDeepStrictEqual } from "node:util";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ProduceRecord = components["schemas"]["ProduceRecord"];

function fail(message: string): never {
  throw new Error(message);
}

// Awaits a request, checks its status and returns the parsed body (undefined for 204).
async function expectStatus<T>(
  step: string,
  status: number,
  request: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await request;
  if (response.status !== status) {
    fail(`${step}: expected HTTP ${status}, got ${response.status}: ${JSON.stringify(error ?? data)}`);
  }
  return data as T;
}

function expectEqual(step: string, actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(`${step}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

const baseUrl = process.env.GATEWAY_URL;
if (!baseUrl) {
  console.error("flow: set GATEWAY_URL to the server's base URL, e.g. http://127.0.0.1:8080");
  process.exit(2);
}
const api = createClient<paths>({ baseUrl });
const topic = `ts-flow-${Date.now().toString(36)}-${process.pid}`;
const group = `${topic}-readers`;

async function main(): Promise<void> {
  await expectStatus("create topic", 201, api.POST("/v1/topics", { body: { name: topic, partitions: 2 } }));

  const records: ProduceRecord[] = [
    { key: "user-1", value: { event: "signup", plan: "pro" }, headers: { trace: "flow-1" } },
    { key: "user-2", value: "plain text" },
    { key: "user-1", value: [1, 2, 3] },
    { partition: 0, valueBase64: "3q2+7w==" },
    { partition: 1, value: null },
  ];
  const produced = await expectStatus("produce", 200,
    api.POST("/v1/topics/{topic}/records", { params: { path: { topic } }, body: { records } }));
  expectEqual("produce: one position per record", produced.offsets.length, records.length);

  // Fetch every record back from the partition and offset the produce answered.
  for (const [i, position] of produced.offsets.entries()) {
    const fetched = await expectStatus(`fetch record ${i}`, 200, api.GET("/v1/topics/{topic}/partitions/{partition}/records", {
      params: { path: { topic, partition: position.partition }, query: { offset: position.offset, limit: 1 } },
    }));
    const record = fetched.records[0] ?? fail(`fetch record ${i}: no record at ${JSON.stringify(position)}`);
    const sent = records[i]!;
    expectEqual(`fetch record ${i}`, [record.offset, record.key, record.value, record.valueBase64, record.headers],
      [position.offset, sent.key, sent.value, sent.valueBase64, sent.headers]);
  }

  const member = await expectStatus("join group", 201, api.POST("/v1/groups/{group}/members", {
    params: { path: { group } },
    body: { topics: [topic], autoOffsetReset: "earliest", sessionTimeoutMs: 10_000 },
  }));
  expectEqual("join: the only member holds both partitions", member.assignments.length, 2);
  const memberPath = { group, memberId: member.memberId };

  // Long-poll as the member until it has seen every record; remember the next offset of each partition.
  const next = new Map<number, number>();
  let seen = 0;
  for (let attempt = 0; seen < records.length; attempt++) {
    if (attempt === 5) fail(`fetch as member: ${seen} of ${records.length} records after 5 fetches`);
    const batch = await expectStatus("fetch as member", 200, api.GET("/v1/groups/{group}/members/{memberId}/records", {
      params: { path: memberPath, query: { waitMs: 5_000 } },
    }));
    for (const record of batch.records) next.set(record.partition, record.offset + 1);
    seen += batch.records.length;
  }
  expectEqual("fetch as member: records seen", seen, records.length);

  const offsets = [...next].map(([partition, offset]) => ({ topic, partition, offset }));
  const committed = await expectStatus("commit", 200, api.POST("/v1/groups/{group}/members/{memberId}/offsets", {
    params: { path: memberPath }, body: { generation: member.generation, offsets },
  }));
  expectEqual("commit: committed offsets", sortByPartition(committed.offsets), sortByPartition(offsets));

  const described = await expectStatus("describe group", 200, api.GET("/v1/groups/{group}", { params: { path: { group } } }));
  expectEqual("describe: members", described.members.map((m) => m.memberId), [member.memberId]);
  expectEqual("describe: committed offsets and lag", sortByPartition(described.offsets).map((o) => [o.committedOffset, o.lag]),
    sortByPartition(offsets).map((o) => [o.offset, 0]));

  await expectStatus("leave group", 204, api.DELETE("/v1/groups/{group}/members/{memberId}", { params: { path: memberPath } }));
  await expectStatus("delete group", 204, api.DELETE("/v1/groups/{group}", { params: { path: { group } } }));
  await expectStatus("delete topic", 204, api.DELETE("/v1/topics/{topic}", { params: { path: { topic } } }));
  await expectStatus("describe deleted topic", 404, api.GET("/v1/topics/{topic}", { params: { path: { topic } } }));
}

function sortByPartition<T extends { partition: number }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.partition - b.partition);
}

main().then(
  () => console.log(`flow passed against ${baseUrl} (topic ${topic})`),
  (error: unknown) => {
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : "";
    console.error(`flow FAILED against ${baseUrl}: ${error instanceof Error ? error.message : String(error)}${cause}`);
    process.exitCode = 1;
  },
);
