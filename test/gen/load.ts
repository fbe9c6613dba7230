import { makeFrame, type Frame } from '../../src/core/frame';
import { dnsMessage, ether, httpLoad, ipv4, timed, udp } from './packets';

/** 2,000 HTTP transactions on 32 keep-alive connections and 300 DNS queries over UDP, interleaved in time */
export function scaleOutFrames(): Frame[] {
  const http = httpLoad(2000, 32);
  const dns = timed(
    Array.from({ length: 600 }, (_, i) => {
      const q = i >> 1;
      const answer = (i & 1) === 1;
      const client = '10.9.1.' + (1 + (q % 50));
      const msg = dnsMessage(q + 1, `host${q}.load.test`, 1, answer, answer ? ['10.9.2.' + (q % 250)] : []);
      return ether(0x0800, answer ? ipv4('10.9.0.53', client, 17, udp(53, 40000 + q, msg)) : ipv4(client, '10.9.0.53', 17, udp(40000 + q, 53, msg)));
    }),
    1_700_000_000,
    undefined,
    100_000,
  );
  return [...http, ...dns]
    .sort((a, b) => a.sec - b.sec || a.nsec - b.nsec)
    .map((g) => makeFrame(g.sec, g.nsec, 1, g.data.length, 0, g.data));
}
