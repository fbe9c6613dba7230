/**
 * Writes fixtures/tls/edge-*.pcap from the real handshakes of fixtures/tls (their
 * bytes as nginx and curl sent them), re-sent in ways a capture meets and a live run
 * does not produce on demand: segments lost in the middle of a handshake, captures
 * that start inside a connection (after the hellos, and at the ClientHello without
 * the SYN), and every record cut into 7-byte segments on port 443 (found by port,
 * not by the probe). Deterministic: `npx tsx test/gen/tls.ts` rewrites the files
 * byte-identical.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { conversations } from '../fuzz-helpers';
import { F, TcpConv, writePcap, type GenFrame, etherFrames as frames } from './packets';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'tls');

/** the server's port of a capture of Ethernet frames on lo: the destination of its first SYN */
export function serverPort(file: string): number {
  const b = readFileSync(file);
  const le = b.readUInt32LE(0) === 0xa1b23c4d || b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const l2 = link === 1 ? 14 : link === 113 ? 16 : 0;
  for (let o = 24; o + 16 <= b.length; ) {
    const caplen = u32(o + 8);
    const p = o + 16 + l2;
    if (b[p] >> 4 === 4 && b[p + 9] === 6) {
      const t = p + (b[p] & 15) * 4;
      if ((b[t + 13] & 0x12) === 0x02) return b.readUInt16BE(t + 2);
    }
    o += 16 + caplen;
  }
  throw new Error(`${file}: no SYN`);
}

const convs = (name: string) => {
  const f = path.join(FIXTURES, `${name}.pcap`);
  return conversations(f, serverPort(f));
};

/** one connection's turns re-sent; `lost(turn)`: that turn's segments are never captured; `cut`: segment size */
function resend(turns: [number, Buffer][], client: string, cport: number, sport: number, o: { lost?: number[]; from?: number; handshake?: boolean; cut?: number } = {}): Buffer[] {
  const c = new TcpConv([{ ip: client, port: cport }, { ip: '10.11.0.2', port: sport }]);
  const pk: Buffer[] = o.handshake === false ? [] : c.handshake();
  turns.forEach(([side, data], i) => {
    const cut = o.cut ?? 1400;
    for (let k = 0; k < data.length; k += cut) {
      const seg = c.seg(side, F.PSH | F.ACK, data.subarray(k, k + cut));
      if (i >= (o.from ?? 0) && !(o.lost ?? []).includes(i)) pk.push(seg);
    }
  });
  return [...pk, ...c.close()];
}

/** TLS 1.2 (curl): the server's first flight lost (ServerHello and certificates); the client's key exchange flight lost */
function gaps(): GenFrame[] {
  const [a, b] = convs('tls12');
  return frames([...resend(a, '10.11.0.1', 51001, 8443, { lost: [1] }), ...resend(b, '10.11.0.1', 51002, 8443, { lost: [2] })]);
}

/** a capture that starts after the hellos (nothing to report), and one that starts at the ClientHello without the SYN (reported) */
function midstream(): GenFrame[] {
  const [a] = convs('tls12');
  const [t13] = convs('tls13');
  return frames([...resend(a, '10.11.0.1', 51011, 8443, { from: 2, handshake: false }), ...resend(t13, '10.11.0.1', 51012, 8443, { handshake: false })]);
}

/** every turn cut into 7-byte segments, the server on 443 */
function segments(): GenFrame[] {
  const [t13] = convs('tls13');
  const [t12] = convs('tls12');
  return frames([...resend(t13, '10.11.0.1', 51021, 443, { cut: 7 }), ...resend(t12, '10.11.0.1', 51022, 443, { cut: 7 })]);
}

export function tlsEdgeCases(): Record<string, Buffer> {
  return {
    'edge-gaps.pcap': writePcap(gaps()),
    'edge-midstream.pcap': writePcap(midstream()),
    'edge-segments.pcap': writePcap(segments()),
  };
}

if (require.main === module) {
  mkdirSync(FIXTURES, { recursive: true });
  const files = tlsEdgeCases();
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(FIXTURES, name), data);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${FIXTURES}`);
}
