/**
 * Writes fixtures/redis/edge-*.pcap: Redis conversations real clients do not produce
 * on demand: packet loss inside and between messages, captures that start inside a
 * connection, a server on another port, RESP3 types Redis 7 never sends (streamed
 * strings and aggregates) and pushes between replies, replication links, bytes that
 * are not RESP. Deterministic: `npx tsx test/gen/redis.ts` rewrites the files
 * byte-identical.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writePcap, type GenFrame, etherFrames as frames, TcpScript as Conv } from './packets';

/** a command as client libraries encode it */
export const cmd = (...words: string[]) => `*${words.length}\r\n` + words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('');
const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** a conversation on one connection; `lose` builds a segment (advancing the sequence numbers) that the capture never sees */

/** packet loss: inside a bulk string, between pipelined replies, between pipelined commands */
function gaps(): GenFrame[] {
  // a segment lost in the middle of a 6000-byte value: the reply is complete, with the loss noted
  const value = Array.from({ length: 600 }, (_, i) => String(i % 10).repeat(10)).join('');
  const reply = bulk(value);
  const a = new Conv('10.9.0.1', 50001, '10.9.0.2', 6379).send(0, cmd('SET', 'k', 'v')).send(1, '+OK\r\n').send(0, cmd('GET', 'big'));
  a.send(1, reply.slice(0, 2000)).lose(1, reply.slice(2000, 4000)).send(1, reply.slice(4000));
  a.send(0, cmd('PING')).send(1, '+PONG\r\n');
  // replies lost at a message boundary: which reply comes next cannot be known
  const r = new Conv('10.9.0.1', 50002, '10.9.0.2', 6379).send(0, cmd('GET', 'a') + cmd('GET', 'b') + cmd('GET', 'c') + cmd('GET', 'd'));
  r.send(1, bulk('a') + bulk('b')).lose(1, bulk('c') + bulk('d'));
  r.send(0, cmd('SET', 'e', '1')).send(1, '+OK\r\n').send(0, cmd('GET', 'e')).send(1, bulk('1'));
  // a command lost inside a pipeline: the replies of the commands before it still pair
  const q = new Conv('10.9.0.1', 50003, '10.9.0.2', 6379).send(0, cmd('GET', 'a') + cmd('GET', 'b')).lose(0, cmd('GET', 'c')).send(0, cmd('GET', 'd'));
  q.send(1, bulk('a') + bulk('b') + bulk('c') + bulk('d'));
  q.send(0, cmd('PING')).send(1, '+PONG\r\n');
  // a command cut by the loss (its words so far are known)
  const big = cmd('SET', 'cut', 'x'.repeat(3000));
  const k = new Conv('10.9.0.1', 50004, '10.9.0.2', 6379).send(0, big.slice(0, 24)).lose(0, big.slice(24, 30)).send(0, big.slice(30));
  k.send(1, '+OK\r\n').send(0, cmd('PING')).send(1, '+PONG\r\n');
  return frames([...a.close(), ...r.close(), ...q.close(), ...k.close()]);
}

/** captures that begin inside connections: in a reply, in a command */
function midstream(): GenFrame[] {
  const m = new Conv('10.9.1.1', 50101, '10.9.1.2', 6379, false, [70000, 90000]);
  m.send(1, 'llo world\r\n+OK\r\n');
  m.send(0, '\r\n$3\r\nbar\r\n' + cmd('GET', 'foo'));
  m.send(1, bulk('foo-value'));
  m.send(0, cmd('PING')).send(1, '+PONG\r\n');
  // the first reply seen is a pub/sub message (RESP2 subscribed mode, not a reply to anything)
  const s = new Conv('10.9.1.1', 50102, '10.9.1.2', 6379, false, [123, 456]);
  s.send(1, '*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n');
  s.send(0, cmd('PING')).send(1, '*2\r\n$4\r\npong\r\n$0\r\n\r\n');
  return frames([...m.close(), ...s.close()]);
}

/** a server on a port no protocol claims, found by its first bytes: a client command, and an inline PING found by its reply */
function otherPort(): GenFrame[] {
  const a = new Conv('10.9.2.1', 50201, '10.9.2.2', 16379).send(0, cmd('HELLO', '3')).send(1, '%1\r\n$5\r\nproto\r\n:3\r\n');
  a.send(0, cmd('SET', 'k', 'v')).send(1, '+OK\r\n');
  const i = new Conv('10.9.2.1', 50202, '10.9.2.2', 16380).send(0, 'PING\r\n').send(1, '+PONG\r\n').send(0, 'GET k\r\n').send(1, '$-1\r\n');
  return frames([...a.close(), ...i.close()]);
}

/** RESP3 that Redis 7 never sends but the protocol allows, and pushes between pipelined replies */
function resp3(): GenFrame[] {
  const c = new Conv('10.9.3.1', 50301, '10.9.3.2', 6379).send(0, cmd('HELLO', '3')).send(1, '%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n');
  c.send(0, cmd('GET', 'streamed') + cmd('LRANGE', 'l', '0', '-1') + cmd('HGETALL', 'h') + cmd('GET', 'attr') + cmd('FCALL', 'f', '1', 'key'));
  // a streamed string; a push between replies; a streamed array; a streamed map with an attribute on a value
  c.send(1, '$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n', '>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n');
  c.send(1, '*?\r\n:1\r\n(-12345678901234567890\r\n,inf\r\n,-nan\r\n.\r\n');
  c.send(1, '%?\r\n+a\r\n|1\r\n+ttl\r\n:3600\r\n#t\r\n+b\r\n_\r\n.\r\n');
  c.send(1, '|2\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n+source\r\n=8\r\ntxt:disk\r\n*2\r\n=8\r\nmkd:*hi*\r\n~1\r\n:1\r\n');
  c.send(1, '!21\r\nSYNTAX invalid syntax\r\n');
  // a confirmation nobody asked for (a shard channel moved to another node)
  c.send(1, '>3\r\n$12\r\nsunsubscribe\r\n$7\r\nshard-x\r\n:0\r\n');
  c.send(0, cmd('PING')).send(1, '+PONG\r\n');
  return frames(c.close());
}

/** replication links: after PSYNC's reply and after SYNC the stream is the RDB file and commands from the master */
function replication(): GenFrame[] {
  const rdb = 'REDIS0011\xfa\x09redis-ver\x067.0.15\xff\x00\x01\x02\x03\x04\x05\x06\x07';
  const p = new Conv('10.9.4.1', 50401, '10.9.4.2', 6379).send(0, cmd('PING')).send(1, '+PONG\r\n');
  p.send(0, cmd('REPLCONF', 'listening-port', '6380')).send(1, '+OK\r\n');
  p.send(0, cmd('PSYNC', '?', '-1')).send(1, '+FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 0\r\n');
  p.send(1, `$${rdb.length}\r\n${rdb}`, cmd('SELECT', '0') + cmd('SET', 'replicated', '1'));
  p.send(0, cmd('REPLCONF', 'ACK', '31'));
  const s = new Conv('10.9.4.1', 50402, '10.9.4.2', 6379).send(0, cmd('SYNC')).send(1, `$${rdb.length}\r\n${rdb}`, cmd('PING'));
  return frames([...p.close(), ...s.close()]);
}

/** bytes that are not RESP: an unknown type, nesting past the bound, an inline command past 64 KiB; each followed by a recovery */
function violations(): GenFrame[] {
  const u = new Conv('10.9.5.1', 50501, '10.9.5.2', 6379).send(0, cmd('GET', 'a')).send(1, '?what is this\r\n');
  u.send(0, cmd('PING')).send(1, '+PONG\r\n');
  const d = new Conv('10.9.5.1', 50502, '10.9.5.2', 6379).send(0, cmd('GET', 'deep')).send(1, '*1\r\n'.repeat(40) + ':1\r\n');
  d.send(0, cmd('PING')).send(1, '+PONG\r\n');
  const long = 'SET k ' + 'v'.repeat(70_000);
  const l = new Conv('10.9.5.1', 50503, '10.9.5.2', 6379);
  for (let i = 0; i < long.length; i += 10_000) l.send(0, long.slice(i, i + 10_000));
  l.send(0, '\r\n' + cmd('PING')).send(1, '+PONG\r\n');
  return frames([...u.close(), ...d.close(), ...l.close()]);
}

export function redisEdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-other-port.pcap': writePcap(otherPort()),
    'edge-resp3.pcap': writePcap(resp3()),
    'edge-replication.pcap': writePcap(replication()),
    'edge-violations.pcap': writePcap(violations()),
  };
}

if (require.main === module) {
  const dir = path.join(__dirname, '..', '..', 'fixtures', 'redis');
  mkdirSync(dir, { recursive: true });
  const files = redisEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${dir}`);
}
