/**
 * One memcache message, text or binary, request or response, as the parser fills
 * it. Every field is set in the constructor, in one order, so all messages share a
 * hidden class; a field that a message does not carry keeps its "absent" value
 * (-1, null, '') and is left out of the event.
 */
export class McMessage {
  binary = false;
  /** packetbeat's command name: `get`, `set`, ... for requests; `VALUE`, `STORED`, ... for text responses */
  command = '';
  /** packetbeat's classification: Load, Store, ..., Success, Fail */
  type = '';
  /** text: the command line (requests: what `query` shows; unknown commands: `request.line`) */
  line = '';
  keys: string[] = [];
  flags = -1;
  exptime = -1;
  /** bytes of the value(s): a storage request's data, the sum of a response's values */
  bytes = -1;
  /** the CAS unique (exact up to 2^53) */
  cas = -1;
  delta = -1;
  initial = -1;
  /** a counter's value after incr/decr (response) */
  value = -1;
  verbosity = -1;
  noreply = false;
  /** binary quiet opcodes and meta commands with the q flag: a response comes only for some outcomes */
  quiet = false;
  opcode = -1;
  opaque = 0;
  vbucket = -1;
  /** binary response status */
  status = -1;
  errorMsg: string | null = null;
  countValues = 0;
  /** base64 of the values kept (maxValues, maxBytesPerValue) */
  values: string[] | null = null;
  stats: { name: string; value: string }[] | null = null;
  version: string | null = null;
  rawArgs: string | null = null;
  sourceClass: number | null = null;
  destClass: number | null = null;
  automove: string | null = null;
  sleepUs = -1;
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** bytes of the message on the wire */
  wireBytes = 0;
  /** bytes of the message lost to packet loss */
  missing = 0;
  notes: string[] | null = null;
  /** a request lost to packet loss, kept so that later responses pair with the right requests */
  lost = false;

  constructor(readonly isRequest: boolean) {}

  note(n: string): void {
    if (this.notes === null) this.notes = [n];
    else if (!this.notes.includes(n)) this.notes.push(n);
  }
}
