import type { Frame } from '../core/frame';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/**
 * A decoded packet: offsets into bytes plus parsed header fields. Every field is
 * initialised in the constructor in one order, so all packets share one hidden
 * class. Addresses are four 32-bit words (IPv4 uses a3 only): comparing and
 * hashing them costs no string.
 */
export class Packet {
  frame: Frame;
  tsSec: number;
  tsNsec: number;
  /** bytes holding the transport header: frame.data, or a reassembled datagram */
  data: Buffer;
  vlan = -1;
  vlanInner = -1;
  /** offset of the Ethernet header in frame.data, or -1 when the link has none */
  ethOff = -1;
  etherType = 0;
  ipVersion = 0;
  /** IP datagram length as the header gives it (header included) */
  ipLen = 0;
  ttl = 0;
  src0 = 0;
  src1 = 0;
  src2 = 0;
  src3 = 0;
  dst0 = 0;
  dst1 = 0;
  dst2 = 0;
  dst3 = 0;
  proto = 0;
  /** offset of the transport header in data */
  l4Off = 0;
  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  seq = 0;
  ack = 0;
  window = 0;
  /** TCP options of a SYN: MSS (0 if absent) and window scale (-1 if absent) */
  mss = 0;
  wscale = -1;
  icmpType = -1;
  icmpCode = -1;
  /** ICMP echo identifier and sequence, or the quoted datagram's offset for errors */
  icmpId = 0;
  icmpSeq = 0;
  payloadOff = 0;
  payloadLen = 0;
  /** payload bytes the wire carried but the capture did not (snaplen) */
  payloadMissing = 0;
  /** this packet is an IP datagram rebuilt from fragments */
  reassembled = false;
  /** the frames this packet came in: 1, or every fragment of a reassembled datagram */
  frames = 1;
  /** the bytes those frames had on the wire (their original lengths) */
  wireBytes: number;

  constructor(frame: Frame) {
    this.frame = frame;
    this.tsSec = frame.tsSec;
    this.tsNsec = frame.tsNsec;
    this.data = frame.data;
    this.wireBytes = frame.origLen;
  }
}

/** The drop and anomaly reasons the decoders report (stable names: they appear in stats). */
export const Reason = {
  unsupportedLinkType: 'unsupported_link_type',
  truncatedLink: 'truncated_link_header',
  truncatedVlan: 'truncated_vlan_tag',
  tooManyVlanTags: 'too_many_vlan_tags',
  truncatedIpv4: 'truncated_ipv4_header',
  badIpv4Header: 'bad_ipv4_header',
  badIpVersion: 'bad_ip_version',
  truncatedIpv6: 'truncated_ipv6_header',
  truncatedIpv6Ext: 'truncated_ipv6_extension_header',
  tooManyIpv6Ext: 'too_many_ipv6_extension_headers',
  truncatedTcp: 'truncated_tcp_header',
  badTcpHeader: 'bad_tcp_header',
  truncatedUdp: 'truncated_udp_header',
  badUdpLength: 'bad_udp_length',
  truncatedIcmp: 'truncated_icmp_header',
  fragmentHeld: 'ip_fragment_held',
  fragmentBad: 'bad_ip_fragment',
} as const;
