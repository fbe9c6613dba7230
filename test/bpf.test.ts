import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { BpfError, bpfFilter, compileBpf } from '../src/decode/bpf';
import { captureFile } from '../src/sources/file';
import { fixture } from './helpers';

const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;

describe('BPF filters on files', { skip: haveTcpdump ? false : 'tcpdump (libpcap\'s compiler) not installed', timeout: 600_000 }, () => {
  const filters = ['tcp port 8080', 'udp', 'port 53', 'tcp[tcpflags] & tcp-syn != 0', 'ip6', 'vlan 100', 'vlan and tcp', 'greater 200', 'host 127.0.0.1 and not port 53', 'ip[6:2] & 0x1fff != 0 or ip[6] & 0x20 != 0', 'tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420', 'icmp or arp', 'net 192.168.0.0/16', 'len >= 100 and len <= 300'];
  const files = ['http-dns.pcap', 'edge/vlan-qinq.pcap', 'edge/ipv4-frag.pcap', 'edge/tcp-reorder.pcap', 'edge/big-endian-nsec.pcap'];
  for (const file of files) {
    it(`select the frames tcpdump selects: ${file}`, async () => {
      for (const expr of filters) {
        const stage = bpfFilter(expr);
        let ours = 0;
        for await (const b of captureFile({ path: fixture(file) }).batches()) ours += stage.push(b).length;
        const theirs = execFileSync('tcpdump', ['-r', fixture(file), expr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean).length;
        assert.equal(ours, theirs, `${file}: ${expr}`);
      }
    });
  }

  it('reports a bad expression in one line', () => {
    assert.throws(() => compileBpf('tcp port', 1), (e: BpfError) => /^bad filter "tcp port": /.test(e.message) && !e.message.includes('\n'));
  });
});
