// kafkajs 2.2.4 against Gateway's Kafka listener: admin, an idempotent gzip producer, a consumer group, committed offsets.
// Usage: node flow.mjs HOST:PORT — prints one JSON line with what happened; exits non-zero on any error.
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';

const kafka = new Kafka({ clientId: 'kafkajs-flow', brokers: [process.argv[2]], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const created = await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 2 }] });
const metadata = await admin.fetchTopicMetadata({ topics: ['js'] });

const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const sent = await producer.send({
  topic: 'js',
  compression: CompressionTypes.GZIP, // stored as sent, decompressed by the consumer below
  messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ n: i }), headers: { h: `${i}` }, partition: i % 2 })),
});
await producer.disconnect();

const consumer = kafka.consumer({ groupId: 'js-readers', sessionTimeout: 10000, heartbeatInterval: 500 });
await consumer.connect();
await consumer.subscribe({ topic: 'js', fromBeginning: true });
const seen = [];
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`only ${seen.length} of 10 consumed`)), 30000);
  consumer.run({
    eachMessage: async ({ message }) => {
      seen.push({ key: message.key.toString(), n: JSON.parse(message.value.toString()).n, h: message.headers.h.toString() });
      if (seen.length === 10) {
        clearTimeout(timer);
        resolve();
      }
    },
  }).catch(reject);
});
await consumer.disconnect(); // commits what was consumed, then leaves the group
const offsets = await admin.fetchOffsets({ groupId: 'js-readers', topics: ['js'] });
const groups = await admin.listGroups();
await admin.deleteTopics({ topics: ['js'] });
await admin.disconnect();

console.log(JSON.stringify({
  created,
  partitions: metadata.topics[0].partitions.length,
  sent: sent.map(r => ({ partition: r.partition, offset: r.baseOffset, error: r.errorCode })),
  seen: seen.sort((a, b) => a.n - b.n),
  committed: offsets[0].partitions.map(p => ({ partition: p.partition, offset: p.offset })).sort((a, b) => a.partition - b.partition),
  groups: groups.groups.map(g => g.groupId),
}));
