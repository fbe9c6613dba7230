/** Address words as text: IPv4 dotted quad, IPv6 in RFC 5952 canonical form. */
export function ipString(version: number, w0: number, w1: number, w2: number, w3: number): string {
  if (version === 4) return `${w3 >>> 24}.${(w3 >>> 16) & 255}.${(w3 >>> 8) & 255}.${w3 & 255}`;
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // IPv4-mapped addresses keep the dotted tail
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return `::ffff:${ipString(4, 0, 0, 0, w3)}`;
  return ipv6Text(g);
}

/** eight 16-bit groups in RFC 5952 form: the longest run of two or more zero groups becomes "::" (the first on a tie) */
export function ipv6Text(g: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: readonly number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** address words into 4 or 16 network-order bytes at `off` */
export function writeAddress(out: Buffer, off: number, version: number, w0: number, w1: number, w2: number, w3: number): number {
  if (version === 4) {
    out.writeUInt32BE(w3, off);
    return off + 4;
  }
  out.writeUInt32BE(w0, off);
  out.writeUInt32BE(w1, off + 4);
  out.writeUInt32BE(w2, off + 8);
  out.writeUInt32BE(w3, off + 12);
  return off + 16;
}

/**
 * Private, loopback, link-local and unique-local ranges: "internal" for
 * network.direction (the ECS perimeter view, computed from addresses alone so the
 * same capture gives the same events on any machine).
 */
export function isInternal(version: number, w0: number, w3: number): boolean {
  if (version === 4) {
    const a = w3 >>> 24;
    const b = (w3 >>> 16) & 255;
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
  }
  const top = w0 >>> 16;
  if ((top & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((top & 0xffc0) === 0xfe80) return true; // fe80::/10 link local
  return w0 === 0 && w3 <= 1; // ::1 loopback, :: unspecified
}
