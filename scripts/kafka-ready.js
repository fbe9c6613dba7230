// Exit 0 when a Kafka broker at the given address answers a metadata request.
const { Kafka, logLevel } = require('kafkajs');
const admin = new Kafka({ clientId: 'pktflow-ready', brokers: [process.argv[2] || '127.0.0.1:9092'], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 }).admin();
admin
  .connect()
  .then(() => admin.listTopics())
  .then(() => admin.disconnect())
  .then(() => process.exit(0), () => process.exit(1));
