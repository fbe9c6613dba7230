import type { Frame } from '../core/frame';
import type { Stage, Stats } from '../core/stage';

/**
 * Keeps the frames of one capture interface: a pcapng interface's index (tshark's
 * `frame.interface_id`), so a capture made on several interfaces at once (`dumpcap -i
 * lo -i any`) can be read as one of them. Frames of pcap files and live captures are
 * interface 0.
 */
export class InterfaceFilter implements Stage<Frame, Frame> {
  readonly name = 'interface';
  readonly takes = 'Frame';
  readonly outputs = 'Frame';
  accepted = 0;
  rejected = 0;

  constructor(readonly iface: number) {}

  push(frames: Frame[]): Frame[] {
    const out: Frame[] = [];
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].iface === this.iface) out.push(frames[i]);
    }
    this.accepted += out.length;
    this.rejected += frames.length - out.length;
    return out;
  }

  flush(): Frame[] {
    return [];
  }

  stats(): Stats {
    return { accepted: this.accepted, rejected: this.rejected };
  }
}

export const interfaceFilter = (iface: number) => new InterfaceFilter(iface);
