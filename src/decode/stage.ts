import { ReasonCounter } from '../core/counters';
import { timeValid, type Frame } from '../core/frame';
import type { Stage, Stats } from '../core/stage';
import { Defragmenter, type DefragOptions } from './defrag';
import { decodeIcmp } from './icmp';
import { decodeIpv4, ipv4FragmentOffset, ipv4Id, ipv4MoreFragments } from './ipv4';
import { decodeIpv6, ipv6Frag } from './ipv6';
import { decodeLink, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from './link';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Packet, Reason } from './packet';
import { failure } from './result';
import type { AnomalyReporter } from '../events/anomaly';
import { decodeTcp } from './tcp';
import { decodeUdp } from './udp';

export interface DecodeOptions {
  defrag?: DefragOptions;
  /** where decode errors go as anomaly events (off when absent) */
  anomalies?: AnomalyReporter;
}

/**
 * Frames in, decoded packets out. Every frame ends up in exactly one place:
 * `decoded` (passed on), or `dropped` under one reason — so
 * frames = decoded + sum(dropped). A fragment that does not complete its datagram
 * is counted as `ip_fragment_held`; the datagram it belongs to is passed on with the
 * fragment that completes it.
 */
export class DecodeStage implements Stage<Frame, Packet> {
  readonly name = 'decode';
  readonly takes = 'Frame';
  readonly outputs = 'Packet';
  private readonly defrag: Defragmenter;
  frames = 0;
  bytes = 0;
  decoded = 0;
  readonly dropped = new ReasonCounter();
  // packets per protocol
  ipv4 = 0;
  ipv6 = 0;
  arp = 0;
  otherLink = 0;
  tcp = 0;
  udp = 0;
  icmp = 0;
  icmpv6 = 0;
  otherIp = 0;
  vlanTagged = 0;
  snapTruncated = 0;
  /** frames whose time was impossible, given the time of the frame before */
  badTimestamps = 0;
  private lastSec = 0;
  /** the last valid frame time */
  private goodSec = -1;
  private goodNsec = 0;
  private readonly anomalies: AnomalyReporter | null;

  constructor(options: DecodeOptions = {}) {
    this.defrag = new Defragmenter(options.defrag);
    this.anomalies = options.anomalies ?? null;
  }

  push(frames: Frame[]): Packet[] {
    const out: Packet[] = [];
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      let badTime = false;
      if (!timeValid(f)) {
        this.repairTime(frames, i);
        badTime = true;
      } else {
        this.goodSec = f.tsSec;
        this.goodNsec = f.tsNsec;
      }
      if (f.tsSec > this.lastSec) {
        // time moved on: forget fragments that waited too long before adding new ones
        this.lastSec = f.tsSec;
        this.defrag.expire(f.tsSec);
      }
      this.frames++;
      this.bytes += f.capLen;
      const p = new Packet(f);
      const reason = this.decodeOne(p, f);
      if (badTime) this.anomalies?.packet('capture', 'bad_timestamp', p);
      if (reason === null) {
        this.decoded++;
        out.push(p);
      } else {
        this.dropped.add(reason);
        // a fragment waiting for the rest of its datagram is normal, not an anomaly
        if (this.anomalies !== null && reason !== Reason.fragmentHeld) this.anomalies.packet('decode', reason, p);
      }
    }
    return out;
  }

  /**
   * The last valid frame time was this, in a frame another stage decoded (--workers:
   * the main thread deals the frames, and knows the frame before a damaged one)
   */
  goodTime(sec: number, nsec: number): void {
    this.goodSec = sec;
    this.goodNsec = nsec;
  }

  /**
   * A frame whose time is impossible (a damaged timestamp in the capture) takes the time
   * of the frame before it, or before any, of the next good one in the batch: packet
   * time does not jump, so timeouts and durations stay sound. Counted.
   */
  private repairTime(frames: Frame[], i: number): void {
    const f = frames[i];
    this.badTimestamps++;
    if (this.goodSec < 0) {
      for (let j = i + 1; j < frames.length; j++) {
        if (timeValid(frames[j])) {
          this.goodSec = frames[j].tsSec;
          this.goodNsec = frames[j].tsNsec;
          break;
        }
      }
    }
    f.tsSec = Math.max(0, this.goodSec);
    f.tsNsec = this.goodSec < 0 ? 0 : this.goodNsec;
  }

  flush(): Packet[] {
    // datagrams still missing fragments will not complete: let go of them (and their frames)
    this.defrag.expire(Infinity, 'end_of_input');
    return [];
  }

  discard(): void {
    this.defrag.discard();
  }

  tick(sec: number): Packet[] {
    if (sec > this.lastSec) {
      this.lastSec = sec;
      this.defrag.expire(sec);
    }
    return [];
  }

  /** null when the packet goes on; else the reason it is dropped */
  private decodeOne(p: Packet, f: Frame): string | null {
    const b = f.data;
    const ipOff = decodeLink(p, b, f.linkType);
    if (ipOff < 0) return failure.reason;
    if (p.vlan >= 0) this.vlanTagged++;
    let l4: number;
    if (p.etherType === ETHERTYPE_IPV4) {
      l4 = decodeIpv4(p, b, ipOff);
      if (l4 < 0) return failure.reason;
      this.ipv4++;
    } else if (p.etherType === ETHERTYPE_IPV6) {
      l4 = decodeIpv6(p, b, ipOff);
      if (l4 < 0) return failure.reason;
      this.ipv6++;
    } else {
      if (p.etherType === ETHERTYPE_ARP) this.arp++;
      else this.otherLink++;
      return null;
    }
    // the datagram's end: what the IP header says, cut at what was captured (Ethernet padding trimmed)
    let end = ipOff + p.ipLen;
    if (end > b.length) {
      p.payloadMissing = end - b.length;
      this.snapTruncated++;
      end = b.length;
    }
    if (l4 > end) return p.ipVersion === 4 ? Reason.badIpv4Header : Reason.truncatedIpv6Ext;

    // fragments go to the defragmenter; the one that completes a datagram carries it on
    const fragOffset = p.ipVersion === 4 ? ipv4FragmentOffset(b, ipOff) : ipv6Frag.off >= 0 ? ipv6Frag.offset : -1;
    if (fragOffset >= 0) {
      if (p.payloadMissing > 0) return Reason.fragmentBad; // a cut fragment cannot be reassembled
      const more = p.ipVersion === 4 ? ipv4MoreFragments(b, ipOff) : ipv6Frag.more;
      const id = p.ipVersion === 4 ? ipv4Id(b, ipOff) : ipv6Frag.id;
      const key = `${p.ipVersion}|${p.src0}|${p.src1}|${p.src2}|${p.src3}|${p.dst0}|${p.dst1}|${p.dst2}|${p.dst3}|${p.proto}|${id}`;
      const whole = this.defrag.add(key, f, fragOffset, more, b, l4, end - l4);
      if (whole === null) return this.defrag.badReason !== '' ? this.defrag.badReason : Reason.fragmentHeld;
      p.data = whole;
      p.reassembled = true;
      p.frames = this.defrag.doneFrames;
      p.wireBytes = this.defrag.doneWireBytes;
      l4 = 0;
      end = whole.length;
    }
    return this.decodeTransport(p, p.data, l4, end);
  }

  private decodeTransport(p: Packet, b: Buffer, l4: number, end: number): string | null {
    p.l4Off = l4;
    let r: number;
    switch (p.proto) {
      case IPPROTO_TCP:
        r = decodeTcp(p, b, l4, end);
        if (r >= 0) this.tcp++;
        break;
      case IPPROTO_UDP:
        r = decodeUdp(p, b, l4, end);
        if (r >= 0) this.udp++;
        break;
      case IPPROTO_ICMP:
      case IPPROTO_ICMPV6:
        r = decodeIcmp(p, b, l4, end);
        if (r >= 0) {
          if (p.proto === IPPROTO_ICMP) this.icmp++;
          else this.icmpv6++;
        }
        break;
      default:
        this.otherIp++;
        p.payloadOff = l4;
        p.payloadLen = end - l4;
        return null;
    }
    return r < 0 ? failure.reason : null;
  }

  stats(): Stats {
    return {
      frames: this.frames,
      bytes: this.bytes,
      decoded: this.decoded,
      dropped: this.dropped.toJSON(),
      protocols: {
        ipv4: this.ipv4,
        ipv6: this.ipv6,
        arp: this.arp,
        other_link: this.otherLink,
        tcp: this.tcp,
        udp: this.udp,
        icmp: this.icmp,
        icmpv6: this.icmpv6,
        other_ip: this.otherIp,
      },
      vlan_tagged: this.vlanTagged,
      snaplen_truncated: this.snapTruncated,
      bad_timestamps: this.badTimestamps,
      defrag: this.defrag.stats(),
    };
  }
}

export function decode(options: DecodeOptions = {}): DecodeStage {
  return new DecodeStage(options);
}
