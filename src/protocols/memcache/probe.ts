import { HEADER } from './codes';
import { plausibleHeader } from './parser';

/**
 * Text requests that only memcache sends, by their first line (ending in CR LF).
 * Commands that another text protocol may send with the same shape are left out:
 * `get key`, `touch key n` and `quit` are also Redis inline commands, so a
 * connection that starts with one of them is recognised by the server's answer.
 */
const REQUESTS: RegExp[] = [
  /^(set|add|replace|append|prepend) \S{1,250} \d+ -?\d+ \d+( noreply)?\r\n/,
  /^cas \S{1,250} \d+ -?\d+ \d+ \d+( noreply)?\r\n/,
  /^(incr|decr) \S{1,250} \d+( noreply)?\r\n/,
  /^gets( \S{1,250})+\r\n/,
  /^get \S{1,250}( \S{1,250})+\r\n/,
  /^gats? -?\d+( \S{1,250})+\r\n/,
  /^delete \S{1,250}( 0)?( noreply)?\r\n/,
  /^(stats( [ -~]+)?|version|flush_all( -?\d+)?( noreply)?|verbosity \d+( noreply)?)\r\n/,
];

/** a server's first line that only memcache sends */
const RESPONSES: RegExp[] = [
  /^VALUE \S{1,250} \d+ \d+( \d+)?\r\n/,
  /^(END|STORED|NOT_STORED|EXISTS|NOT_FOUND|DELETED|TOUCHED)\r\n/,
  /^STAT \S+ [ -~]*\r\n/,
  /^VERSION [ -~]+\r\n/,
  /^(CLIENT|SERVER)_ERROR [ -~]*\r\n/,
];

/** the longest first line looked at */
const LINE = 600;

function probeMessage(b: Buffer, off: number, len: number, side: number): boolean {
  if (len >= HEADER && (b[off] === 0x80 || b[off] === 0x81)) return plausibleHeader(b, off, side === 0);
  const nl = b.indexOf(10, off);
  if (nl < 0 || nl >= off + Math.min(len, LINE)) return false;
  const line = b.toString('latin1', off, nl + 1);
  for (const re of side === 0 ? REQUESTS : RESPONSES) if (re.test(line)) return true;
  return false;
}

/**
 * Is this the start of a memcache conversation? Text or binary, in a TCP stream or
 * a UDP datagram (whose 8-byte frame header, with its reserved zero bytes and a
 * sequence number below the datagram count, comes first).
 */
export function probe(b: Buffer, off: number, len: number, side: number): boolean {
  if (probeMessage(b, off, len, side)) return true;
  if (len < 10) return false;
  const seq = b.readUInt16BE(off + 2);
  const total = b.readUInt16BE(off + 4);
  return b[off + 6] === 0 && b[off + 7] === 0 && total > 0 && seq < total && seq === 0 && probeMessage(b, off + 8, len - 8, side);
}
