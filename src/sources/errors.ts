/**
 * A capture file that is not a capture, or is damaged. The message is one line that
 * names the file and the byte offset at fault.
 */
export class CaptureFileError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${file}: offset ${offset}: ${reason}`);
    this.name = 'CaptureFileError';
  }
}

/** libpcap's own ceiling for a snapshot length; a larger record length means a damaged file */
export const MAX_RECORD_BYTES = 262_144;
