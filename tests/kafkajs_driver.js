// KafkaJS for the black-box tests: one operation per run, given as JSON, answered as one JSON line.
//
//   node kafkajs_driver.js '{"op": "create_partitions", "brokers": ["127.0.0.1:9092"], ...}'
//
// Operations (every one takes "brokers"; an admin's or producer's Kafka error is answered as
// {ok: false, error}, a consumer's fails the run):
//   cluster           {}                                        -> {brokers: [{nodeId, port}], controller}
//   create_topic      {topic, partitions, configs: {k: v}}      -> {ok: true} | {ok: false, error}
//   create_partitions {topics: [{topic, count}], validateOnly}  -> {ok: true} | {ok: false, error}
//   partitions        {topic}                                   -> {count}
//   leaders           {topic}                                   -> {leaders: {partition: nodeId}}
//   alter_configs     {resources: [{type, name, configs: {k: v}}], validateOnly, node}
//                                                               -> {ok: true, resources: [{name, errorCode}]}
//   describe_configs  {resources: [{type, name, configNames}], node}
//                                                               -> {ok: true, resources: [{name, errorCode,
//                                                                   configs: {k: {value, source, readOnly}}}]}
//       (KafkaJS sends no configNames, "all", for an empty list.) Both go through KafkaJS's admin,
//       which sends a BROKER resource to that broker and refuses the cluster-wide resource ""
//       itself; with "node" they go through KafkaJS's own protocol layer (its Broker object)
//       straight to that broker id, so "" can be sent.
//   produce           {topic, messages: [{partition, key, value, timestamp}]} or {topicMessages:
//                     [{topic, messages}]} (one sendBatch)  -> {ok: true, results: [{topic, partition,
//                     baseOffset, logAppendTime}], produceRequests} | {ok: false, error, produceRequests}
//   consume           {topic, group, expect, timeoutMs, readUncommitted}
//                                                               -> {messages: [{partition, offset, key,
//                                                                   value, timestamp, timestampType}]}
//   transactions      {topic, transactionalId, transactions: [{commit, messages}]}
//                                                               -> {ok: true} | {ok: false, error}
//       One transactional producer runs the transactions in order, committing or aborting each.
//   grow_subscribed   {topic, group, count, perPartition}       -> {assignments: [[partition]], messages}
//       A group member subscribes, and once it has the topic's partitions assigned, the topic is
//       grown to `count` partitions (KafkaJS's admin); once the member has all of them assigned,
//       `perPartition` records are produced to each, and read.
// An error is {type, code, message}: KafkaJS's protocol error (unwrapped from its retry wrapper).
"use strict";

const { Kafka, logLevel } = require("kafkajs");

function describe(e) {
  let err = e;
  while (err && err.originalError) err = err.originalError;
  if (err && Array.isArray(err.errors) && err.errors.length) err = err.errors[0];
  return { type: err && err.type, code: err && err.code, message: String(err && err.message) };
}

const configEntries = (configs) => Object.entries(configs || {}).map(([name, value]) => ({ name, value }));

// KafkaJS's cluster (its connections and protocol layer), which the Kafka object keeps private.
function cluster(kafka) {
  const create = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster");
  return kafka[create]({ metadataMaxAge: 300000 });
}

async function withAdmin(kafka, f) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await f(admin);
  } catch (e) {
    return { ok: false, error: describe(e) };
  } finally {
    await admin.disconnect();
  }
}

async function onBroker(kafka, node, f) {
  const c = cluster(kafka);
  await c.connect();
  try {
    await c.refreshMetadata();
    return await f(await c.findBroker({ nodeId: String(node) }));
  } catch (e) {
    return { ok: false, error: describe(e) };
  } finally {
    await c.disconnect();
  }
}

function configsOf(resources) {
  return resources.map((r) => ({
    name: r.resourceName,
    type: r.resourceType,
    errorCode: r.errorCode,
    errorMessage: r.errorMessage,
    configs: r.configEntries
      ? Object.fromEntries(
          r.configEntries.map((c) => [
            c.configName,
            { value: c.configValue, source: c.configSource, readOnly: c.readOnly },
          ]),
        )
      : undefined,
  }));
}

const message = (topic, partition, m) => ({
  topic,
  partition,
  offset: Number(m.offset),
  key: m.key === null ? null : m.key.toString(),
  value: m.value === null ? null : m.value.toString(),
  timestamp: Number(m.timestamp),
  timestampType: m.batchContext ? m.batchContext.timestampType : undefined,
});

// Runs a group member until `done(messages)`, or the timeout; the messages it read.
async function consumeUntil(kafka, req, done, onJoin) {
  const consumer = kafka.consumer({
    groupId: req.group,
    maxWaitTimeInMs: 100,
    metadataMaxAge: req.metadataMaxAge,
    readUncommitted: !!req.readUncommitted,
  });
  await consumer.connect();
  const messages = [];
  try {
    if (onJoin) consumer.on(consumer.events.GROUP_JOIN, (e) => onJoin(e.payload.memberAssignment, messages));
    await consumer.subscribe({ topic: req.topic, fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, req.timeoutMs || 30000);
      consumer
        .run({
          eachMessage: async ({ topic, partition, message: m }) => {
            messages.push(message(topic, partition, m));
            if (done(messages)) {
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
  return messages;
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
    case "cluster":
      return withAdmin(kafka, async (admin) => {
        const c = await admin.describeCluster();
        return { brokers: c.brokers.map((b) => ({ nodeId: b.nodeId, port: b.port })), controller: c.controller };
      });
    case "create_topic":
      return withAdmin(kafka, async (admin) => {
        const topic = {
          topic: req.topic,
          numPartitions: req.partitions || 1,
          configEntries: configEntries(req.configs),
        };
        const created = await admin.createTopics({ topics: [topic] });
        return { ok: created };
      });
    case "create_partitions":
      return withAdmin(kafka, async (admin) => {
        await admin.createPartitions({ topicPartitions: req.topics, validateOnly: !!req.validateOnly });
        return { ok: true };
      });
    case "partitions":
      return withAdmin(kafka, async (admin) => {
        const md = await admin.fetchTopicMetadata({ topics: [req.topic] });
        return { count: md.topics[0].partitions.length };
      });
    case "leaders":
      return withAdmin(kafka, async (admin) => {
        const md = await admin.fetchTopicMetadata({ topics: [req.topic] });
        return { leaders: Object.fromEntries(md.topics[0].partitions.map((p) => [p.partitionId, p.leader])) };
      });
    case "alter_configs": {
      const resources = req.resources.map((r) => ({
        type: r.type,
        name: r.name,
        configEntries: configEntries(r.configs),
      }));
      const answer = (out) => ({ ok: true, resources: configsOf(out.resources) });
      const validateOnly = !!req.validateOnly;
      if (req.node !== undefined) {
        return onBroker(kafka, req.node, async (b) => answer(await b.alterConfigs({ resources, validateOnly })));
      }
      return withAdmin(kafka, async (admin) => answer(await admin.alterConfigs({ resources, validateOnly })));
    }
    case "describe_configs": {
      const resources = req.resources.map((r) => ({ type: r.type, name: r.name, configNames: r.configNames || [] }));
      const answer = (out) => ({ ok: true, resources: configsOf(out.resources) });
      if (req.node !== undefined) {
        return onBroker(kafka, req.node, async (b) => answer(await b.describeConfigs({ resources })));
      }
      return withAdmin(kafka, async (admin) => answer(await admin.describeConfigs({ resources })));
    }
    case "produce": {
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      let produceRequests = 0;
      producer.on(producer.events.REQUEST, (e) => {
        if (e.payload.apiName === "Produce") produceRequests++;
      });
      await producer.connect();
      const messages = (ms) =>
        ms.map((m) => ({ ...m, timestamp: m.timestamp === undefined ? undefined : String(m.timestamp) }));
      try {
        const results = req.topicMessages
          ? await producer.sendBatch({
              acks: -1,
              topicMessages: req.topicMessages.map((t) => ({ topic: t.topic, messages: messages(t.messages) })),
            })
          : await producer.send({ topic: req.topic, acks: -1, messages: messages(req.messages) });
        return {
          ok: true,
          produceRequests,
          results: results.map((r) => ({
            topic: r.topicName,
            partition: r.partition,
            baseOffset: Number(r.baseOffset),
            logAppendTime: Number(r.logAppendTime),
          })),
        };
      } catch (e) {
        return { ok: false, error: describe(e), produceRequests };
      } finally {
        await producer.disconnect();
      }
    }
    case "consume":
      return { messages: await consumeUntil(kafka, req, (ms) => ms.length >= req.expect) };
    case "transactions": {
      const producer = kafka.producer({
        transactionalId: req.transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      try {
        for (const t of req.transactions) {
          const txn = await producer.transaction();
          await txn.send({ topic: req.topic, acks: -1, messages: t.messages });
          if (t.commit) await txn.commit();
          else await txn.abort();
        }
        return { ok: true };
      } catch (e) {
        return { ok: false, error: describe(e) };
      } finally {
        await producer.disconnect();
      }
    }
    case "grow_subscribed": {
      const assignments = [];
      let grown = null;
      let produced = null;
      let failed = null;
      const total = req.count * req.perPartition;
      const grow = async () => {
        const admin = kafka.admin();
        await admin.connect();
        try {
          await admin.createPartitions({ topicPartitions: [{ topic: req.topic, count: req.count }] });
        } finally {
          await admin.disconnect();
        }
      };
      const produce = async () => {
        const producer = kafka.producer({ allowAutoTopicCreation: false });
        await producer.connect();
        try {
          const ms = [];
          for (let p = 0; p < req.count; p++) {
            for (let i = 0; i < req.perPartition; i++) ms.push({ partition: p, value: `${p}-${i}` });
          }
          await producer.send({ topic: req.topic, acks: -1, messages: ms });
        } finally {
          await producer.disconnect();
        }
      };
      const onJoin = (assignment) => {
        const mine = (assignment[req.topic] || []).slice().sort((a, b) => a - b);
        assignments.push(mine);
        const remember = (e) => (failed = failed || describe(e));
        if (!grown && mine.length > 0) grown = grow().catch(remember);
        if (!produced && mine.length === req.count) produced = grown.then(produce).catch(remember);
      };
      const messages = await consumeUntil(kafka, req, (ms) => ms.length >= total || failed, onJoin);
      if (grown) await grown;
      if (produced) await produced;
      return { assignments, messages, failed };
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
