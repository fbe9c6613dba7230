/** One RESP message (a command, a reply or a push) as the parser saw it on the wire. */
export class RespMessage {
  startSec = 0;
  startNsec = 0;
  endSec = 0;
  endNsec = 0;
  /** everything the message took on the wire, bytes lost to a gap included */
  wireBytes = 0;
  /** bytes the capture lost inside this message */
  missingBytes = 0;
  /** type byte of the top-level value after any attribute (`*`, `+`, `$`, `%`, `>`, ...); 0 for an inline command */
  type = 0;
  /** packetbeat's rendering: a command's words joined by spaces, a reply as text with `[...]` arrays */
  text = '';
  /** `text` was cut at the value limit */
  truncated = false;
  /** elements of the top-level aggregate (words of an inline command); -1 when it is not one */
  count = -1;
  /** the first top-level elements that are strings or numbers, as text (cut short); '' for the others */
  args: string[] = [];
  /** bit i: top-level element i was a null */
  nulls = 0;
  /** the last top-level element, as `args` keeps them */
  last = '';

  /** a simple error (`-`) or a blob error (`!`) */
  get isError(): boolean {
    return this.type === 45 || this.type === 33;
  }

  /** a RESP3 push (`>`): out of band, not a reply */
  get isPush(): boolean {
    return this.type === 62;
  }
}
