/**
 * DHCPv4 / BOOTP messages (RFC 2131, RFC 951): the fixed 236-byte header, the magic
 * cookie, the options (RFC 2132) with RFC 3396's long options (one code split over
 * several entries is concatenated) and option overload (option 52: options continue
 * in the `file` and `sname` fields). A message is one UDP datagram, so every length
 * is bounded by the datagram's.
 *
 * What the event shows of the options follows packetbeat's `dhcpv4.option.*`
 * (packetbeat/protos/dhcpv4/options.go), plus the client identifier and the relay
 * agent information, which packetbeat does not show.
 */

/** the fixed BOOTP header; options (after the 4-byte cookie) follow it */
export const HEADER_LEN = 236;
const COOKIE = 0x63825363;

/** why a datagram is not a DHCP message, or what is wrong inside one (stable names: they appear in stats) */
export const Violation = {
  truncatedHeader: 'truncated_header',
  badOpCode: 'bad_op_code',
  badHardwareLength: 'bad_hardware_length',
  truncatedOption: 'truncated_option',
  badOptionLength: 'bad_option_length',
  noEndOption: 'no_end_option',
} as const;

export class DhcpParseError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** DHCP message types (option 53; RFC 2132, 4388, 6926, 7724) */
export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
  forcerenew: 9,
  leasequery: 10,
  leaseunassigned: 11,
  leaseunknown: 12,
  leaseactive: 13,
  bulkleasequery: 14,
  leasequerydone: 15,
  activeleasequery: 16,
  leasequerystatus: 17,
  tls: 18,
} as const;

const TYPE_NAMES: string[] = [];
for (const [name, n] of Object.entries(MessageType)) TYPE_NAMES[n] = name;

/** option 53's value by name, lower case as packetbeat writes it; `unknown (N)` for others */
export function messageTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `unknown (${t})`;
}

/** BOOTP hardware types by number (IANA ARP parameters), as packetbeat names them; others "Invalid" */
const HW_TYPES = [
  '', 'Ethernet', 'Experimental Ethernet', 'Amateur Radio AX.25', 'Proteon ProNET Token Ring', 'Chaos', 'IEEE 802', 'ARCNET', 'Hyperchannel', 'Lanstar',
  'Autonet Short Address', 'LocalTalk', 'LocalNet', 'Ultra link', 'SMDS', 'Frame Relay', 'ATM', 'HDLC', 'Fibre Channel', 'ATM 2', 'Serial Line', 'ATM 3',
  'MIL-STD-188-220', 'Metricom', 'IEEE 1394.1995', 'MAPOS', 'Twinaxial', 'EUI-64', 'HIPARP', 'IP and ARP over ISO 7816-3', 'ARPSec', 'IPsec tunnel',
  'Infiniband', 'CAI, TIA-102 Project 125 Common Air Interface', 'Wiegand Interface', 'Pure IP',
];

export function hardwareTypeName(t: number): string {
  return t > 0 && t < HW_TYPES.length ? HW_TYPES[t] : 'Invalid';
}

/** option names for the parameter request list (the names packetbeat's DHCP library gives them) */
const OPTION_NAMES: Record<number, string> = {
  0: 'Pad', 1: 'Subnet Mask', 2: 'Time Offset', 3: 'Router', 4: 'Time Server', 5: 'Name Server', 6: 'Domain Name Server', 7: 'Log Server',
  8: 'Quote Server', 9: 'LPR Server', 10: 'Impress Server', 11: 'Resource Location Server', 12: 'Host Name', 13: 'Boot File Size',
  14: 'Merit Dump File', 15: 'Domain Name', 16: 'Swap Server', 17: 'Root Path', 18: 'Extensions Path', 19: 'IP Forwarding enable/disable',
  20: 'Non-local Source Routing enable/disable', 21: 'Policy Filter', 22: 'Maximum Datagram Reassembly Size', 23: 'Default IP Time-to-live',
  24: 'Path MTU Aging Timeout', 25: 'Path MTU Plateau Table', 26: 'Interface MTU', 27: 'All Subnets Are Local', 28: 'Broadcast Address',
  29: 'Perform Mask Discovery', 30: 'Mask Supplier', 31: 'Perform Router Discovery', 32: 'Router Solicitation Address', 33: 'Static Routing Table',
  34: 'Trailer Encapsulation', 35: 'ARP Cache Timeout', 36: 'Ethernet Encapsulation', 37: 'Default TCP TTL', 38: 'TCP Keepalive Interval',
  39: 'TCP Keepalive Garbage', 40: 'Network Information Service Domain', 41: 'Network Information Servers', 42: 'NTP Servers',
  43: 'Vendor Specific Information', 44: 'NetBIOS over TCP/IP Name Server', 45: 'NetBIOS over TCP/IP Datagram Distribution Server',
  46: 'NetBIOS over TCP/IP Node Type', 47: 'NetBIOS over TCP/IP Scope', 48: 'X Window System Font Server', 49: 'X Window System Display Manager',
  50: 'Requested IP Address', 51: 'IP Addresses Lease Time', 52: 'Option Overload', 53: 'DHCP Message Type', 54: 'Server Identifier',
  55: 'Parameter Request List', 56: 'Message', 57: 'Maximum DHCP Message Size', 58: 'Renew Time Value', 59: 'Rebinding Time Value',
  60: 'Class Identifier', 61: 'Client identifier', 62: 'NetWare/IP Domain Name', 63: 'NetWare/IP Information', 64: 'Network Information Service+ Domain',
  65: 'Network Information Service+ Servers', 66: 'TFTP Server Name', 67: 'Bootfile Name', 68: 'Mobile IP Home Agent', 69: 'SMTP Server',
  70: 'POP Server', 71: 'NNTP Server', 72: 'Default WWW Server', 73: 'Default Finger Server', 74: 'Default IRC Server', 75: 'StreetTalk Server',
  76: 'StreetTalk Directory Assistance Server', 77: 'User Class Information', 78: 'SLP DIrectory Agent', 79: 'SLP Service Scope', 80: 'Rapid Commit',
  81: 'FQDN', 82: 'Relay Agent Information', 83: 'Internet Storage Name Service', 85: 'NDS Servers', 86: 'NDS Tree Name', 87: 'NDS Context',
  88: 'BCMCS Controller Domain Name List', 89: 'BCMCS Controller IPv4 Address List', 90: 'Authentication', 91: 'Client Last Transaction Time',
  92: 'Associated IP', 93: 'Client System Architecture Type', 94: 'Client Network Interface Identifier', 95: 'LDAP', 97: 'Client Machine Identifier',
  98: "OpenGroup's User Authentication", 99: 'GEOCONF_CIVIC', 100: 'IEEE 1003.1 TZ String', 101: 'Reference to the TZ Database',
  108: 'Number of seconds that DHCPv4 should be disabled', 112: 'NetInfo Parent Server Address', 113: 'NetInfo Parent Server Tag', 114: 'URL',
  116: 'Auto-Configure', 117: 'Name Service Search', 118: 'Subnet Selection', 119: 'DNS Domain Search List', 120: 'SIP Servers',
  121: 'Classless Static Route', 122: 'CCC, CableLabs Client Configuration', 123: 'GeoConf', 124: 'Vendor-Identifying Vendor Class',
  125: 'Vendor-Identifying Vendor-Specific', 150: 'TFTP Server Address', 252: 'Web Proxy Auto-Discovery', 255: 'End',
};

export function optionName(code: number): string {
  return OPTION_NAMES[code] ?? `unknown (${code})`;
}

/** a parsed message: the header fields, then the options the event shows */
export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  /** dotted quads; '' for 0.0.0.0 */
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** the first `hlen` bytes of chaddr (at most 16), colon-separated hex */
  chaddr: string;
  /** `sname` and `file` up to their first NUL ('' when empty or holding options) */
  sname: string;
  file: string;
  /** option 53, 0 when absent (plain BOOTP) */
  type: number;
  /** packetbeat's `dhcpv4.option.*` and pktflow's additions, in a fixed order */
  option: Record<string, unknown>;
  /** what is wrong inside the message (it is still used) */
  violations: string[];
  /** UDP payload bytes */
  size: number;
}

const ip4 = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const addr = (b: Buffer, o: number): string => (b.readUInt32BE(o) === 0 ? '' : ip4(b, o));

const HEX: string[] = Array.from({ length: 256 }, (_, i) => (i < 16 ? '0' : '') + i.toString(16));

function hex(b: Buffer, o: number, n: number, sep: string): string {
  let s = '';
  for (let i = o; i < o + n; i++) {
    if (i > o) s += sep;
    s += HEX[b[i]];
  }
  return s;
}

/** text up to the first NUL (a fixed field padded with zeros) */
function cstring(b: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

/** an option's text: trailing NULs some clients add are not part of it */
function text(b: Buffer, o: number, n: number): string {
  let end = o + n;
  while (end > o && b[end - 1] === 0) end--;
  return b.toString('utf8', o, end);
}

/**
 * Where each option code's value is, for the message being parsed: scratch tables
 * reused by every parse (no Map, no views per option). A code that comes in several
 * parts (RFC 3396) is joined into a buffer of its own, in `joined`.
 */
const optBuf: (Buffer | null)[] = new Array(256).fill(null);
const optOff = new Int32Array(256);
const optLen = new Int32Array(256).fill(-1);
const seen: number[] = [];

function resetOptions(): void {
  for (const code of seen) {
    optLen[code] = -1;
    optBuf[code] = null;
  }
  seen.length = 0;
}

/**
 * Parse the DHCP message in b[off, off+len). Throws DhcpParseError when it is not one
 * (shorter than the header, an op code that is neither request nor reply); damage
 * inside the options is noted in `violations` and the rest is kept.
 */
export function parseDhcp(b: Buffer, off: number, len: number): DhcpMessage {
  if (len < HEADER_LEN) throw new DhcpParseError(Violation.truncatedHeader);
  const op = b[off];
  if (op !== 1 && op !== 2) throw new DhcpParseError(Violation.badOpCode);
  const violations: string[] = [];
  let hlen = b[off + 2];
  if (hlen > 16) {
    violations.push(Violation.badHardwareLength);
    hlen = 16;
  }
  const m: DhcpMessage = {
    op,
    htype: b[off + 1],
    hlen,
    hops: b[off + 3],
    xid: b.readUInt32BE(off + 4),
    secs: b.readUInt16BE(off + 8),
    flags: b.readUInt16BE(off + 10),
    ciaddr: addr(b, off + 12),
    yiaddr: addr(b, off + 16),
    siaddr: addr(b, off + 20),
    giaddr: addr(b, off + 24),
    chaddr: hex(b, off + 28, hlen, ':'),
    sname: '',
    file: '',
    type: 0,
    option: {},
    violations,
    size: len,
  };
  // options: only after the magic cookie (without it, a BOOTP message of RFC 951 with a vendor area)
  let overload = 0;
  resetOptions();
  if (len >= HEADER_LEN + 4 && b.readUInt32BE(off + HEADER_LEN) === COOKIE) {
    scan(b, off + HEADER_LEN + 4, off + len, violations, true);
    if (optLen[52] === 1) overload = optBuf[52]![optOff[52]];
    // RFC 2131 4.1: options, then `file`, then `sname`
    if (overload & 1) scan(b, off + 108, off + 236, violations, false);
    if (overload & 2) scan(b, off + 44, off + 108, violations, false);
  }
  if (!(overload & 2)) m.sname = cstring(b, off + 44, 64);
  if (!(overload & 1)) m.file = cstring(b, off + 108, 128);
  if (optLen[53] >= 1) m.type = optBuf[53]![optOff[53]];
  else if (optLen[53] === 0) violations.push(Violation.badOptionLength);
  m.option = seen.length > 0 ? options(violations, m.type) : {};
  return m;
}

/** the options in b[o, end) into the scratch tables (a repeated code is joined to its earlier parts, RFC 3396) */
function scan(b: Buffer, o: number, end: number, violations: string[], main: boolean): void {
  while (o < end) {
    const code = b[o++];
    if (code === 0) continue;
    if (code === 255) return;
    if (o >= end) {
      violations.push(Violation.truncatedOption);
      return;
    }
    const l = b[o++];
    if (o + l > end) {
      violations.push(Violation.truncatedOption);
      return;
    }
    if (optLen[code] < 0) {
      seen.push(code);
      optBuf[code] = b;
      optOff[code] = o;
      optLen[code] = l;
    } else {
      const prev = optBuf[code]!;
      const joined = Buffer.concat([prev.subarray(optOff[code], optOff[code] + optLen[code]), b.subarray(o, o + l)]);
      optBuf[code] = joined;
      optOff[code] = 0;
      optLen[code] = joined.length;
    }
    o += l;
  }
  // the options field of a message must end with option 255; `file`/`sname` may simply be full
  if (main) violations.push(Violation.noEndOption);
}

/** option `code` as one address, or undefined (absent, or a length that is not 4: counted) */
function ipOption(code: number, violations: string[]): string | undefined {
  const n = optLen[code];
  if (n < 0) return undefined;
  if (n !== 4) {
    violations.push(Violation.badOptionLength);
    return undefined;
  }
  return ip4(optBuf[code]!, optOff[code]);
}

function ipsOption(code: number, violations: string[]): string[] | undefined {
  const n = optLen[code];
  if (n < 0) return undefined;
  if (n === 0 || n % 4 !== 0) {
    violations.push(Violation.badOptionLength);
    return undefined;
  }
  const b = optBuf[code]!;
  const out: string[] = [];
  for (let i = optOff[code]; i < optOff[code] + n; i += 4) out.push(ip4(b, i));
  return out;
}

function u32Option(code: number, violations: string[]): number | undefined {
  const n = optLen[code];
  if (n < 0) return undefined;
  if (n !== 4) {
    violations.push(Violation.badOptionLength);
    return undefined;
  }
  return optBuf[code]!.readUInt32BE(optOff[code]);
}

/** an option's text, '' when absent */
function textOption(code: number): string {
  return optLen[code] > 0 ? text(optBuf[code]!, optOff[code], optLen[code]) : '';
}

/** packetbeat's `dhcpv4.option.*` (the same names, meanings and order), then pktflow's own */
function options(violations: string[], type: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  let v: unknown;
  if (type !== 0) o.message_type = messageTypeName(type);
  if (optLen[55] >= 0) {
    const prl: string[] = [];
    for (let i = optOff[55]; i < optOff[55] + optLen[55]; i++) prl.push(optionName(optBuf[55]![i]));
    o.parameter_request_list = prl;
  }
  if ((v = ipOption(50, violations)) !== undefined) o.requested_ip_address = v;
  if ((v = ipOption(54, violations)) !== undefined) o.server_identifier = v;
  if ((v = ipOption(28, violations)) !== undefined) o.broadcast_address = v;
  if (optLen[57] >= 0) {
    if (optLen[57] === 2) o.max_dhcp_message_size = optBuf[57]!.readUInt16BE(optOff[57]);
    else violations.push(Violation.badOptionLength);
  }
  if ((v = textOption(60)) !== '') o.class_identifier = v;
  if ((v = textOption(15)) !== '') o.domain_name = v;
  if ((v = ipsOption(6, violations)) !== undefined) o.dns_servers = v;
  if (optLen[124] >= 0) {
    // RFC 3925: enterprise number (4), data length (1), data; repeated
    const b = optBuf[124]!;
    const end = optOff[124] + optLen[124];
    const subs: { id: number; data: string }[] = [];
    let i = optOff[124];
    while (i + 5 <= end) {
      const n = b[i + 4];
      if (i + 5 + n > end) break;
      subs.push({ id: b.readUInt32BE(i), data: hex(b, i + 5, n, '') });
      i += 5 + n;
    }
    if (i !== end) violations.push(Violation.badOptionLength);
    if (subs.length > 0) o.vendor_identifying_options = subs;
  }
  if ((v = ipOption(1, violations)) !== undefined) o.subnet_mask = v;
  if ((v = u32Option(2, violations)) !== undefined) o.utc_time_offset_sec = (v as number) | 0;
  if ((v = ipsOption(3, violations)) !== undefined) o.router = v;
  if ((v = ipsOption(4, violations)) !== undefined) o.time_servers = v;
  if ((v = ipsOption(42, violations)) !== undefined) o.ntp_servers = v;
  if ((v = textOption(12)) !== '') o.hostname = v;
  if ((v = u32Option(51, violations)) !== undefined && v !== 0) o.ip_address_lease_time_sec = v;
  if ((v = textOption(56)) !== '') o.message = v;
  if ((v = u32Option(58, violations)) !== undefined && v !== 0) o.renewal_time_sec = v;
  if ((v = u32Option(59, violations)) !== undefined && v !== 0) o.rebinding_time_sec = v;
  if ((v = textOption(67)) !== '') o.boot_file_name = v;
  // pktflow's additions (packetbeat leaves these options out)
  if (optLen[61] > 0) o.client_identifier = hex(optBuf[61]!, optOff[61], optLen[61], ':');
  if (optLen[82] >= 0) {
    // RFC 3046: sub-options (code, length, value); circuit id 1 and remote id 2 shown in hex
    const b = optBuf[82]!;
    const end = optOff[82] + optLen[82];
    const r: { circuit_id?: string; remote_id?: string } = {};
    let i = optOff[82];
    while (i + 2 <= end) {
      const c = b[i];
      const n = b[i + 1];
      if (i + 2 + n > end) break;
      if (c === 1) r.circuit_id = hex(b, i + 2, n, ':');
      else if (c === 2) r.remote_id = hex(b, i + 2, n, ':');
      i += 2 + n;
    }
    if (i !== end) violations.push(Violation.badOptionLength);
    if (r.circuit_id !== undefined || r.remote_id !== undefined) o.relay_agent_information = r;
  }
  return o;
}

/**
 * Is this payload a DHCP or BOOTP message on a port DHCP does not own? A request or
 * reply op code, a hardware length of at most 16, and the magic cookie right after
 * the fixed header: four fixed bytes at byte 236 that other protocols do not put there.
 */
export function looksLikeDhcp(b: Buffer, off: number, len: number): boolean {
  return len >= HEADER_LEN + 4 && (b[off] === 1 || b[off] === 2) && b[off + 2] <= 16 && b.readUInt32BE(off + HEADER_LEN) === COOKIE;
}
