// MQTT.js (the npm package "mqtt") against the broker, driven by Broker.Tests/WebSocket/MqttJsSpecs.
//   node mqttjs-client.js roundtrip <url> <protocolVersion 4|5> <topic> [caFile]
//     subscribes to <topic> at QoS 1, publishes to it at QoS 1, prints "MSG|topic|qos|payload" for what comes back.
//   node mqttjs-client.js echo <url> <protocolVersion> <inTopic> <outTopic>
//     subscribes to <inTopic> at QoS 1, prints "SUBSCRIBED", and answers the first message on <outTopic> at QoS 1
//     with "echo:" + payload.
// Every line is flushed as printed; the process exits 0 when done, 1 on an error or after 15 s (MQTTJS_TIMEOUT_MS).
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [mode, url, version, topic, extra] = process.argv.slice(2);
const options = {
  protocolVersion: Number(version),
  clientId: `mqttjs-${mode}-${process.pid}`,
  reconnectPeriod: 0,
  connectTimeout: 10000,
};
if (mode === 'roundtrip' && extra) {
  options.ca = fs.readFileSync(extra);
  options.rejectUnauthorized = true;
}

const fail = (why) => { console.log(`ERROR|${why}`); process.exit(1); };
setTimeout(() => fail('timeout'), Number(process.env.MQTTJS_TIMEOUT_MS || 15000)).unref();

const client = mqtt.connect(url, options);
client.on('error', (e) => fail(e.message));
client.on('connect', (connack) => {
  console.log(`CONNECTED|${url.split(':')[0]}|session present ${connack.sessionPresent}`);
  client.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err) return fail(err.message);
    console.log(`SUBSCRIBED|${granted.map((g) => g.qos).join(',')}`);
    if (mode === 'roundtrip') {
      client.publish(topic, 'hello from mqtt.js', { qos: 1 }, (e) => { if (e) fail(e.message); });
    }
  });
});
client.on('message', (t, payload, packet) => {
  console.log(`MSG|${t}|${packet.qos}|${payload.toString()}`);
  if (mode === 'roundtrip') {
    client.end(false, () => process.exit(0));
  } else {
    client.publish(extra, `echo:${payload}`, { qos: 1 }, (e) => {
      if (e) return fail(e.message);
      console.log('ECHOED');
      client.end(false, () => process.exit(0));
    });
  }
});
