// KafkaJS for the black-box tests: one operation per run, given as JSON, answered as one JSON line.
//
//   node kafkajs_driver.js '{"op": "create_partitions", "brokers": ["127.0.0.1:9092"], ...}'
//
// Operations (every one takes "brokers"):
//   create_partitions {topics: [{topic, count}], validateOnly}  -> {ok: true} | {ok: false, error}
//   partitions        {topic}                                   -> {count}
//   produce           {topic, messages: [{partition, value}]}   -> {results: [{partition, baseOffset}]}
//   consume           {topic, group, expect, timeoutMs}         -> {messages: [{partition, offset, value}]}
// An error is {type, code, message}: KafkaJS's protocol error (unwrapped from its retry wrapper).
"use strict";

const { Kafka, logLevel } = require("kafkajs");

function describe(e) {
  let err = e;
  while (err && err.originalError) err = err.originalError;
  if (err && Array.isArray(err.errors) && err.errors.length) err = err.errors[0];
  return { type: err && err.type, code: err && err.code, message: String(err && err.message) };
}

async function main() {
  const req = JSON.parse(process.argv[2]);
  const kafka = new Kafka({
    clientId: "skiff-kafkajs",
    brokers: req.brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  switch (req.op) {
    case "create_partitions": {
      const admin = kafka.admin();
      await admin.connect();
      try {
        await admin.createPartitions({ topicPartitions: req.topics, validateOnly: !!req.validateOnly });
        return { ok: true };
      } catch (e) {
        return { ok: false, error: describe(e) };
      } finally {
        await admin.disconnect();
      }
    }
    case "partitions": {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const md = await admin.fetchTopicMetadata({ topics: [req.topic] });
        return { count: md.topics[0].partitions.length };
      } finally {
        await admin.disconnect();
      }
    }
    case "produce": {
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        const results = await producer.send({ topic: req.topic, acks: -1, messages: req.messages });
        return { results: results.map((r) => ({ partition: r.partition, baseOffset: Number(r.baseOffset) })) };
      } finally {
        await producer.disconnect();
      }
    }
    case "consume": {
      const consumer = kafka.consumer({ groupId: req.group, maxWaitTimeInMs: 100 });
      await consumer.connect();
      const messages = [];
      try {
        await consumer.subscribe({ topic: req.topic, fromBeginning: true });
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, req.timeoutMs || 30000);
          consumer
            .run({
              eachMessage: async ({ partition, message }) => {
                messages.push({ partition, offset: Number(message.offset), value: message.value.toString() });
                if (messages.length >= req.expect) {
                  clearTimeout(timer);
                  resolve();
                }
              },
            })
            .catch(reject);
        });
      } finally {
        await consumer.disconnect();
      }
      return { messages };
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  },
  (e) => {
    process.stdout.write(JSON.stringify({ fatal: describe(e) }) + "\n");
    process.exit(1);
  },
);
