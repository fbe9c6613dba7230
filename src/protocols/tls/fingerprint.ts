/**
 * Client and server fingerprints: JA3 / JA3S (Salesforce's, as packetbeat computes
 * them) and JA4 / JA4S (FoxIO's JA4+ spec), GREASE values left out.
 */
import { createHash } from 'node:crypto';
import type { Hello } from './hello';
import { isGrease } from './names';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
const noGrease = (l: number[]) => l.filter((v) => !isGrease(v));
const hex4 = (v: number) => v.toString(16).padStart(4, '0');

/** the JA3 string and its MD5 */
export function ja3(h: Hello): { text: string; hash: string } {
  const text = [h.version, noGrease(h.ciphers).join('-'), noGrease(h.extensions).join('-'), noGrease(h.groups).join('-'), h.pointFormats.join('-')].join(',');
  return { text, hash: md5(text) };
}

export function ja3s(h: Hello): { text: string; hash: string } {
  const text = [h.version, h.ciphers.join('-'), h.extensions.join('-')].join(',');
  return { text, hash: md5(text) };
}

function ja4Version(v: number): string {
  switch (v) {
    case 0x0304:
      return '13';
    case 0x0303:
      return '12';
    case 0x0302:
      return '11';
    case 0x0301:
      return '10';
    case 0x0300:
      return 's3';
    default:
      return '00';
  }
}

const alnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** the first and last characters of the first ALPN value; `00` when none (non-alphanumeric: the hex's first and last digits) */
function alpnChars(alpn: string[]): string {
  if (alpn.length === 0 || alpn[0].length === 0) return '00';
  const a = alpn[0];
  const first = a.charCodeAt(0);
  const last = a.charCodeAt(a.length - 1);
  if (alnum(first) && alnum(last)) return a[0] + a[a.length - 1];
  const hex = Buffer.from(a, 'latin1').toString('hex');
  return hex[0] + hex[hex.length - 1];
}

const two = (n: number) => String(Math.min(n, 99)).padStart(2, '0');

export function ja4(h: Hello): string {
  const versions = noGrease(h.versions);
  const version = ja4Version(versions.length > 0 ? Math.max(...versions) : h.version);
  const ciphers = noGrease(h.ciphers);
  const exts = noGrease(h.extensions);
  const a = `t${version}${h.serverNames.length > 0 ? 'd' : 'i'}${two(ciphers.length)}${two(exts.length)}${alpnChars(h.alpn)}`;
  const b = ciphers.length === 0 ? '000000000000' : sha12(ciphers.map(hex4).sort().join(','));
  const sorted = exts.filter((e) => e !== 0 && e !== 16).map(hex4).sort();
  let c = '000000000000';
  if (sorted.length > 0) {
    const sigs = h.signatureAlgorithms.filter((v) => !isGrease(v)).map(hex4);
    c = sha12(sigs.length > 0 ? `${sorted.join(',')}_${sigs.join(',')}` : sorted.join(','));
  }
  return `${a}_${b}_${c}`;
}

export function ja4s(h: Hello): string {
  const v = h.versions.length === 1 ? h.versions[0] : h.version;
  const a = `t${ja4Version(v)}${two(h.extensions.length)}${alpnChars(h.alpn)}`;
  const c = h.extensions.length === 0 ? '000000000000' : sha12(h.extensions.map(hex4).join(','));
  return `${a}_${hex4(h.ciphers[0] ?? 0)}_${c}`;
}
