/**
 * Decryption secrets carried by a capture file (pcapng Decryption Secrets Blocks,
 * draft-ietf-opsawg-pcapng §4.7, as `editcap --inject-secrets` writes them), for the
 * analyzers that use them (TLS: secrets type 0x544c534b, an NSS key log). Process-wide:
 * a file source clears them when it starts reading, and the reader adds a block's
 * secrets before the packets that follow it, so the analyzers of the same process see
 * them in time; with --workers N the main thread passes the blocks read since each
 * worker's last batch on with its next frames (src/pipeline/workers.ts).
 */
export const SECRETS_TLS_KEYLOG = 0x544c534b;

export class CaptureSecrets {
  /** the blocks read since the last reset, oldest first */
  readonly blocks: { type: number; data: Buffer }[] = [];
  /** bumped by every reset: a reader of `blocks` knows to start again */
  generation = 0;
  /** bytes of secrets held (bounded: a block beyond it is counted, not held) */
  bytes = 0;
  dropped = 0;

  constructor(readonly maxBytes = 16 * 1024 * 1024) {}

  reset(): void {
    this.blocks.length = 0;
    this.bytes = 0;
    this.generation++;
  }

  add(type: number, data: Buffer): void {
    if (this.bytes + data.length > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.blocks.push({ type, data: Buffer.from(data) });
    this.bytes += data.length;
  }
}

export const captureSecrets = new CaptureSecrets();
