import type { Reader } from './packets';

/**
 * Values of the binary protocol (prepared statements' parameters and binary result
 * rows) and of text rows, as text. Column types: MySQL's enum_field_types.
 */
export const T = {
  DECIMAL: 0x00, TINY: 0x01, SHORT: 0x02, LONG: 0x03, FLOAT: 0x04, DOUBLE: 0x05, NULL: 0x06, TIMESTAMP: 0x07,
  LONGLONG: 0x08, INT24: 0x09, DATE: 0x0a, TIME: 0x0b, DATETIME: 0x0c, YEAR: 0x0d, NEWDATE: 0x0e, VARCHAR: 0x0f, BIT: 0x10,
  TIMESTAMP2: 0x11, DATETIME2: 0x12, TIME2: 0x13, JSON: 0xf5, NEWDECIMAL: 0xf6, ENUM: 0xf7, SET: 0xf8,
  TINY_BLOB: 0xf9, MEDIUM_BLOB: 0xfa, LONG_BLOB: 0xfb, BLOB: 0xfc, VAR_STRING: 0xfd, STRING: 0xfe, GEOMETRY: 0xff,
} as const;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** bytes a value of a fixed-size type takes (the others start with a length byte) */
const FIXED: Record<number, number> = { [T.TINY]: 1, [T.SHORT]: 2, [T.YEAR]: 2, [T.LONG]: 4, [T.INT24]: 4, [T.FLOAT]: 4, [T.LONGLONG]: 8, [T.DOUBLE]: 8, [T.NULL]: 0 };

/**
 * One binary-protocol value of `type` at r.pos, as text of at most `max` bytes
 * (strings are cut, the rest skipped). Returns null for a type it cannot size:
 * what follows can then not be read.
 */
export function binaryValue(r: Reader, type: number, unsigned: boolean, max: number): string | null {
  const b = r.buf;
  if (r.left < (FIXED[type] ?? 1)) return null;
  switch (type) {
    case T.TINY: {
      const v = r.u8();
      return String(unsigned || v < 0x80 ? v : v - 0x100);
    }
    case T.SHORT:
    case T.YEAR: {
      const v = r.u16();
      return String(unsigned || v < 0x8000 ? v : v - 0x10000);
    }
    case T.LONG:
    case T.INT24: {
      const v = r.u32();
      return String(unsigned ? v : v | 0);
    }
    case T.LONGLONG: {
      const v = unsigned ? b.readBigUInt64LE(r.pos) : b.readBigInt64LE(r.pos);
      r.skip(8);
      return v.toString();
    }
    case T.FLOAT: {
      const v = b.readFloatLE(r.pos);
      r.skip(4);
      return String(Number(v.toPrecision(7)));
    }
    case T.DOUBLE: {
      const v = b.readDoubleLE(r.pos);
      r.skip(8);
      return String(v);
    }
    case T.NULL:
      return 'NULL';
    case T.DATE:
    case T.DATETIME:
    case T.TIMESTAMP:
    case T.NEWDATE: {
      const n = r.u8();
      let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, us = -1;
      if (n >= 4) {
        y = r.u16();
        mo = r.u8();
        d = r.u8();
      }
      if (n >= 7) {
        h = r.u8();
        mi = r.u8();
        s = r.u8();
      }
      if (n >= 11) us = r.u32();
      if (n !== 0 && n !== 4 && n !== 7 && n !== 11) r.skip(n);
      const date = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
      if (type === T.DATE || type === T.NEWDATE) return date;
      return `${date} ${pad(h)}:${pad(mi)}:${pad(s)}${us >= 0 ? `.${pad(us, 6)}` : ''}`;
    }
    case T.TIME: {
      const n = r.u8();
      if (n === 0) return '00:00:00';
      if (n !== 8 && n !== 12) {
        r.skip(n);
        return '';
      }
      const neg = r.u8() === 1;
      const days = r.u32();
      const h = r.u8() + days * 24;
      const mi = r.u8();
      const s = r.u8();
      const us = n === 12 ? r.u32() : -1;
      return `${neg ? '-' : ''}${pad(h)}:${pad(mi)}:${pad(s)}${us >= 0 ? `.${pad(us, 6)}` : ''}`;
    }
    case T.DECIMAL:
    case T.VARCHAR:
    case T.BIT:
    case T.JSON:
    case T.NEWDECIMAL:
    case T.ENUM:
    case T.SET:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.BLOB:
    case T.VAR_STRING:
    case T.STRING:
    case T.GEOMETRY: {
      const n = r.lenenc();
      if (n <= 0) return '';
      if (n > r.left) {
        // the value goes on past the bytes kept: its beginning, and the reader marks the cut
        const s = r.buf.toString('utf8', r.pos, r.pos + Math.min(r.left, max));
        r.skip(n);
        return s;
      }
      return r.str(n, max);
    }
    default:
      return null;
  }
}

/**
 * A COM_STMT_EXECUTE's parameters as text (packetbeat's `params`): after the
 * statement id, flags and iteration count come the NULL bitmap, the
 * new-params-bound flag, the types (when bound) and the values. `types` holds the
 * statement's types from an earlier execution (two bytes each: type, unsigned
 * flag) and takes the new ones. Returns what could be read; `cut` when the message
 * ended (or was cut) before the last value.
 */
export function executeParams(r: Reader, count: number, types: number[], max: number): { params: string[]; cut: boolean } {
  const params: string[] = [];
  r.skip(10); // command, statement id, flags, iteration count
  if (count === 0 || r.bad) return { params, cut: r.bad };
  const bitmap = r.pos;
  r.skip((count + 7) >> 3);
  const bound = r.u8();
  if (bound === 1) {
    types.length = 0;
    for (let i = 0; i < count; i++) {
      types.push(r.u8());
      types.push(r.u8());
    }
  }
  if (r.bad || types.length < 2 * count) return { params, cut: true };
  for (let i = 0; i < count; i++) {
    if (r.buf[bitmap + (i >> 3)] & (1 << (i & 7))) {
      params.push('NULL');
      continue;
    }
    const v = binaryValue(r, types[2 * i], (types[2 * i + 1] & 0x80) !== 0, max);
    if (v === null) return { params, cut: true };
    params.push(v);
    if (r.bad) return { params, cut: true };
  }
  return { params, cut: false };
}

/** A text-protocol row: one length-encoded string (or 0xfb, NULL) per column, cut to `max` bytes in all. */
export function textRow(r: Reader, columns: number, max: number): string[] {
  const row: string[] = [];
  let room = max;
  // as packetbeat: columns past max bytes are left out, the one that crosses it is cut
  for (let i = 0; i < columns && !r.bad && r.left > 0 && room > 0; i++) {
    const n = r.lenenc();
    const s = n < 0 ? 'NULL'.slice(0, room) : n === 0 ? '' : r.str(n, room);
    room -= s.length;
    row.push(s);
  }
  return row;
}

/** A binary-protocol row: 0x00, a NULL bitmap (offset by 2 bits), then the values by column type. */
export function binaryRow(r: Reader, types: number[], unsigned: boolean[], max: number): string[] {
  const row: string[] = [];
  const columns = types.length;
  r.skip(1);
  const bitmap = r.pos;
  r.skip((columns + 9) >> 3);
  let room = max;
  for (let i = 0; i < columns && !r.bad && room > 0; i++) {
    const bit = i + 2;
    const v = r.buf[bitmap + (bit >> 3)] & (1 << (bit & 7)) ? 'NULL' : binaryValue(r, types[i], unsigned[i], room);
    if (v === null) break;
    const s = v.length > room ? v.slice(0, room) : v;
    room -= s.length;
    row.push(s);
  }
  return row;
}

/** fields and rows as CSV, a header line of column names first (packetbeat's `response`) */
export function csv(fields: string[], rows: string[][]): string {
  let out = '';
  const line = (cells: string[]) => {
    out += cells.map(csvCell).join(',') + '\n';
  };
  if (fields.length > 0) line(fields);
  for (const r of rows) line(r);
  return out;
}

function csvCell(s: string): string {
  if (s === '' || !/[",\r\n]|^\s/.test(s)) return s;
  return `"${s.replace(/"/g, '""')}"`;
}
