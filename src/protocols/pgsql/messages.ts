/** Reading the bodies of the messages the analyzer looks into. Every reader stops at the end it is given: a body cut short gives what it holds. */

/** the NUL-terminated string at b[i..end), as UTF-8, and where the next field starts (end when there is no NUL) */
export function readCString(b: Buffer, i: number, end: number): { s: string; next: number } {
  let z = i < end ? b.indexOf(0, i) : -1;
  if (z < 0 || z >= end) z = end;
  return { s: b.toString('utf8', i, z), next: Math.min(z + 1, end) };
}

export interface ErrorFields {
  /** SQLSTATE (C) */
  code: string;
  /** primary message (M) */
  message: string;
  /** severity, never localised (V, from 9.6), else as sent (S) */
  severity: string;
}

/** ErrorResponse and NoticeResponse fields */
export function readErrorFields(b: Buffer, i: number, end: number): ErrorFields {
  const e: ErrorFields = { code: '', message: '', severity: '' };
  let localised = '';
  while (i < end && b[i] !== 0) {
    const code = b[i];
    const { s, next } = readCString(b, i + 1, end);
    i = next;
    if (code === 67) e.code = s;
    else if (code === 77) e.message = s;
    else if (code === 86) e.severity = s;
    else if (code === 83) localised = s;
  }
  if (e.severity === '') e.severity = localised;
  return e;
}

/** CommandComplete's tag: the command, and the row count at its end (-1 when it has none) */
export function readTag(b: Buffer, i: number, end: number): { command: string; count: number } {
  const tag = readCString(b, i, end).s;
  const sp = tag.lastIndexOf(' ');
  const last = sp < 0 ? '' : tag.slice(sp + 1);
  if (last !== '' && /^\d{1,15}$/.test(last)) {
    const first = tag.indexOf(' ');
    return { command: tag.slice(0, first), count: +last };
  }
  return { command: tag, count: -1 };
}

/** RowDescription: field names (when asked for) and whether each is in binary format */
export function readFields(b: Buffer, i: number, end: number, names: string[] | null, binary: number[] | null): number {
  if (end - i < 2) return 0;
  const count = b.readUInt16BE(i);
  let p = i + 2;
  for (let k = 0; k < count && p < end; k++) {
    const { s, next } = readCString(b, p, end);
    p = next + 18;
    if (names !== null) names.push(s);
    if (binary !== null) binary.push(p <= end && b.readUInt16BE(p - 2) === 1 ? 1 : 0);
  }
  return count;
}

/**
 * DataRow's values as text, at most `maxLength` bytes over the whole row (as
 * packetbeat's max_row_length): NULL as '', binary values as \x and hex.
 */
export function readRow(b: Buffer, i: number, end: number, binary: number[] | null, maxLength: number): string[] {
  const row: string[] = [];
  if (end - i < 2) return row;
  const count = b.readUInt16BE(i);
  let p = i + 2;
  let room = maxLength;
  for (let k = 0; k < count && end - p >= 4; k++) {
    const l = b.readInt32BE(p);
    p += 4;
    const n = l > 0 ? Math.min(l, end - p) : 0;
    if (room > 0) {
      const take = Math.min(n, room);
      row.push(binary !== null && binary[k] === 1 ? `\\x${b.toString('hex', p, p + take)}` : b.toString('utf8', p, p + take));
      room -= take;
    }
    p += n;
  }
  return row;
}

/** CSV as packetbeat's `response`: the field names, then the rows, one line each */
export function csv(fields: string[], rows: string[][]): string {
  const line = (cells: string[]) => cells.map((c) => (c === '' || !/[",\r\n]|^\s/.test(c) ? c : `"${c.replace(/"/g, '""')}"`)).join(',');
  let out = fields.length > 0 ? line(fields) + '\n' : '';
  for (const r of rows) out += line(r) + '\n';
  return out;
}
