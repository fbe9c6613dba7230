/**
 * Decoders of CQL message bodies (v3, v4, v5) into the fields of packetbeat's
 * `cassandra.request` and `cassandra.response`. Every read is bounds-checked: a
 * body cut short (a gap, or a body longer than was kept) gives the fields that fit,
 * and `Reader.ok` says whether it ended early. Nothing here throws.
 */
import { consistencyName, Flag, Op } from './wire';

/** a cursor over buf[pos, end); a read past the end sets ok = false and returns a neutral value */
export class Reader {
  ok = true;
  constructor(
    public buf: Buffer,
    public pos: number,
    public end: number,
  ) {}

  private need(n: number): boolean {
    if (n < 0 || this.pos + n > this.end) {
      this.ok = false;
      this.pos = this.end;
      return false;
    }
    return true;
  }

  byte(): number {
    return this.need(1) ? this.buf[this.pos++] : 0;
  }

  short(): number {
    if (!this.need(2)) return 0;
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int(): number {
    if (!this.need(4)) return 0;
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  skip(n: number): void {
    if (this.need(n)) this.pos += n;
  }

  /** [string] */
  string(): string {
    const n = this.short();
    if (!this.need(n)) return '';
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** [long string], at most `max` bytes of it kept (cut at a character boundary); `cut`: it was longer than `max` */
  longString(max: number): { text: string; cut: boolean } {
    const n = this.int();
    if (n < 0) return { text: '', cut: false };
    const avail = Math.min(n, this.end - this.pos);
    let take = Math.min(avail, max);
    if (take < n) take = utf8Boundary(this.buf, this.pos, take);
    const text = this.buf.toString('utf8', this.pos, this.pos + take);
    if (avail < n) {
      this.ok = false;
      this.pos = this.end;
    } else this.pos += n;
    return { text, cut: n > max };
  }

  stringList(): string[] {
    const n = this.short();
    const out: string[] = [];
    for (let i = 0; i < n && this.ok; i++) out.push(this.string());
    return out;
  }

  stringMap(): Record<string, string> {
    const n = this.short();
    const out: Record<string, string> = {};
    for (let i = 0; i < n && this.ok; i++) {
      const k = this.string();
      out[k] = this.string();
    }
    return out;
  }

  stringMultimap(): Record<string, string[]> {
    const n = this.short();
    const out: Record<string, string[]> = {};
    for (let i = 0; i < n && this.ok; i++) {
      const k = this.string();
      out[k] = this.stringList();
    }
    return out;
  }

  /** [bytes] skipped; its length (−1 null, −2 not set) */
  skipBytes(): number {
    const n = this.int();
    if (n > 0) this.skip(n);
    return n;
  }

  /** [bytes] as upper-case hex (packetbeat writes paging states so) */
  bytesHex(): string {
    const n = this.int();
    if (n <= 0 || !this.need(n)) return '';
    const s = this.buf.toString('hex', this.pos, this.pos + n).toUpperCase();
    this.pos += n;
    return s;
  }

  /** [short bytes] as lower-case hex */
  shortBytesHex(): string {
    const n = this.short();
    if (!this.need(n)) return '';
    const s = this.buf.toString('hex', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** [bytes map]: skipped */
  skipBytesMap(): void {
    const n = this.short();
    for (let i = 0; i < n && this.ok; i++) {
      this.skip(this.short());
      this.skipBytes();
    }
  }

  /** [inetaddr] as text */
  inetAddr(): string {
    const n = this.byte();
    if ((n !== 4 && n !== 16) || !this.need(n)) {
      this.ok = false;
      return '';
    }
    const b = this.buf;
    const p = this.pos;
    this.pos += n;
    if (n === 4) return `${b[p]}.${b[p + 1]}.${b[p + 2]}.${b[p + 3]}`;
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(p + i).toString(16));
    return compressV6(groups);
  }

  /** a column type ([option], recursively): skipped; depth-bounded */
  skipType(depth = 0): void {
    if (depth > 32) {
      this.ok = false;
      this.pos = this.end;
      return;
    }
    const id = this.short();
    switch (id) {
      case 0x0000: // custom: its class name
        this.skip(this.short());
        break;
      case 0x0020: // list
      case 0x0022: // set
        this.skipType(depth + 1);
        break;
      case 0x0021: // map
        this.skipType(depth + 1);
        this.skipType(depth + 1);
        break;
      case 0x0030: {
        // UDT: keyspace, name, fields (name, type)
        this.skip(this.short());
        this.skip(this.short());
        const n = this.short();
        for (let i = 0; i < n && this.ok; i++) {
          this.skip(this.short());
          this.skipType(depth + 1);
        }
        break;
      }
      case 0x0031: {
        const n = this.short();
        for (let i = 0; i < n && this.ok; i++) this.skipType(depth + 1);
        break;
      }
      default:
        break;
    }
  }
}

/** `take` bytes from `start`, less the incomplete UTF-8 sequence at their end (if any) */
function utf8Boundary(buf: Buffer, start: number, take: number): number {
  for (let k = 1; k <= 3 && k <= take; k++) {
    const b = buf[start + take - k];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return len > k ? take - k : take;
  }
  return take;
}

/** RFC 5952 text of eight hex groups */
function compressV6(g: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

// --- names -----------------------------------------------------------------------------------

/** packetbeat's names of the error codes, and v5's two new ones in the same style */
const ERROR_TYPES: Record<number, string> = {
  0x0000: 'errServer',
  0x000a: 'errProtocol',
  0x0100: 'errCredentials',
  0x1000: 'errUnavailable',
  0x1001: 'errOverloaded',
  0x1002: 'errBootstrapping',
  0x1003: 'errTruncate',
  0x1100: 'errWriteTimeout',
  0x1200: 'errReadTimeout',
  0x1300: 'errReadFailure',
  0x1400: 'errFunctionFailure',
  0x1500: 'errWriteFailure',
  0x1600: 'errCDCWriteFailure',
  0x1700: 'errCASWriteUnknown',
  0x2000: 'errSyntax',
  0x2100: 'errUnauthorized',
  0x2200: 'errInvalid',
  0x2300: 'errConfig',
  0x2400: 'errAlreadyExists',
  0x2500: 'errUnprepared',
};

export function errorTypeName(code: number): string {
  return ERROR_TYPES[code] ?? 'ErrUnknown';
}

const RESULT_TYPES = ['', 'void', 'rows', 'set_keyspace', 'prepared', 'schemaChanged'];
const ROW_FLAGS = ['GlobalTableSpec', 'HasMorePages', 'NoMetaData', 'MetadataChanged'];
const BATCH_TYPES = ['LOGGED', 'UNLOGGED', 'COUNTER'];

/** packetbeat's names of the metadata flags ("GlobalTableSpec"), several joined with `|`; "Default" for none */
function rowFlagsName(f: number): string {
  if (f === 0) return 'Default';
  let s = '';
  for (let i = 0; i < 31; i++) {
    if ((f & (1 << i)) === 0) continue;
    const name = ROW_FLAGS[i] ?? `FLAG_${1 << i}`;
    s = s === '' ? name : `${s}|${name}`;
  }
  return s;
}

// --- requests ---------------------------------------------------------------------------------

/** what a request's body says, for the event and for pairing */
export interface RequestBody {
  /** the CQL text: QUERY, PREPARE; EXECUTE and BATCH from prepared statements seen before */
  query: string;
  /** the query text was cut at maxQueryBytes */
  queryCut: boolean;
  /** `cassandra.request` fields besides headers, in their order */
  fields: Record<string, unknown> | null;
  /** STARTUP: the COMPRESSION option, lower case ('' none) */
  compression: string;
}

/** a prepared statement's text by its id (hex), when its PREPARE was seen */
export type PreparedLookup = (id: string) => string | undefined;

export function decodeRequest(version: number, flags: number, op: number, r: Reader, maxQuery: number, prepared: PreparedLookup): RequestBody {
  const out: RequestBody = { query: '', queryCut: false, fields: null, compression: '' };
  if (flags & Flag.CUSTOM_PAYLOAD && (op === Op.QUERY || op === Op.PREPARE || op === Op.EXECUTE || op === Op.BATCH)) r.skipBytesMap();
  const f: Record<string, unknown> = {};
  switch (op) {
    case Op.QUERY: {
      const q = r.longString(maxQuery);
      out.query = q.text;
      out.queryCut = q.cut;
      if (r.ok || q.text !== '') f.query = q.text;
      const c = r.short();
      if (r.ok) f.consistency = consistencyName(c);
      break;
    }
    case Op.PREPARE: {
      const q = r.longString(maxQuery);
      out.query = q.text;
      out.queryCut = q.cut;
      if (r.ok || q.text !== '') f.query = q.text;
      break;
    }
    case Op.EXECUTE: {
      const id = r.shortBytesHex();
      if (!r.ok) break;
      const text = prepared(id);
      if (text !== undefined) {
        out.query = text;
        f.query = text;
      }
      // v5: the result metadata id follows the statement id
      if (version >= 5) r.skip(r.short());
      const c = r.short();
      if (r.ok) f.consistency = consistencyName(c);
      f.prepared_id = id;
      break;
    }
    case Op.BATCH: {
      const type = r.byte();
      const n = r.short();
      const texts: string[] = [];
      let size = 0;
      for (let i = 0; i < n && r.ok; i++) {
        let text: string;
        if (r.byte() === 0) {
          const q = r.longString(maxQuery);
          text = q.text;
        } else {
          const id = r.shortBytesHex();
          text = prepared(id) ?? `<prepared ${id}>`;
        }
        // values: [short] n, then n [value] (names are not allowed in a batch)
        const nv = r.short();
        for (let v = 0; v < nv && r.ok; v++) r.skipBytes();
        if (size < maxQuery) {
          texts.push(text);
          size += text.length + 2;
        } else out.queryCut = true;
      }
      out.query = texts.join('; ');
      if (out.query.length > maxQuery) {
        out.query = out.query.slice(0, maxQuery);
        out.queryCut = true;
      }
      if (out.query !== '') f.query = out.query;
      const c = r.short();
      if (r.ok) f.consistency = consistencyName(c);
      f.batch = { type: BATCH_TYPES[type] ?? `UNKNOWN_${type}`, statements: n };
      break;
    }
    case Op.REGISTER: {
      const events = r.stringList();
      if (events.length > 0) f.events = events;
      break;
    }
    case Op.STARTUP: {
      const options = r.stringMap();
      f.options = options;
      for (const k in options) if (k.toUpperCase() === 'COMPRESSION') out.compression = options[k].toLowerCase();
      break;
    }
    default:
      // OPTIONS has no body; AUTH_RESPONSE carries credentials, never put in events
      break;
  }
  for (const _ in f) {
    out.fields = f;
    break;
  }
  return out;
}

// --- responses --------------------------------------------------------------------------------

export interface ResponseBody {
  /** `cassandra.response` fields besides headers, in their order */
  fields: Record<string, unknown> | null;
  /** keyspace[.table] the response names: rows metadata, schema change, set keyspace */
  resource: string;
  /** RESULT prepared: the statement id (hex), '' otherwise */
  preparedId: string;
}

export function decodeResponse(version: number, flags: number, op: number, r: Reader): ResponseBody {
  const out: ResponseBody = { fields: null, resource: '', preparedId: '' };
  const f: Record<string, unknown> = {};
  if (flags & Flag.TRACING) r.skip(16);
  if (flags & Flag.WARNING) {
    const w = r.stringList();
    if (w.length > 0) f.warnings = w;
  }
  if (flags & Flag.CUSTOM_PAYLOAD) r.skipBytesMap();
  switch (op) {
    case Op.RESULT:
      f.result = result(version, r, out);
      break;
    case Op.ERROR:
      f.error = error(version, r, out);
      break;
    case Op.SUPPORTED:
      f.supported = r.stringMultimap();
      break;
    case Op.AUTHENTICATE: {
      const cls = r.string();
      if (r.ok) f.authentication = { class: cls };
      break;
    }
    case Op.EVENT:
      f.event = event(version, r, out);
      break;
    default:
      // READY, AUTH_CHALLENGE, AUTH_SUCCESS: nothing to say (tokens are not put in events)
      break;
  }
  for (const _ in f) {
    out.fields = f;
    break;
  }
  return out;
}

function resource(keyspace: string, table: string): string {
  return keyspace === '' ? '' : table === '' ? keyspace : `${keyspace}.${table}`;
}

/** result metadata (rows, and the two of a prepared result); `prepared`: the bound variables' metadata, with partition key indexes */
function metadata(version: number, r: Reader, prepared: boolean): Record<string, unknown> {
  const flags = r.int();
  const cols = r.int();
  let pkeys: number[] | null = null;
  if (prepared && version >= 4) {
    const n = r.int();
    pkeys = [];
    for (let i = 0; i < n && r.ok && i < 1024; i++) pkeys.push(r.short());
    if (n > 1024) r.skip((n - 1024) * 2);
  }
  let paging = '';
  if (!prepared && flags & 0x02) paging = r.bytesHex();
  if (!prepared && flags & 0x08) r.skip(r.short()); // v5: new result metadata id
  let keyspace = '';
  let table = '';
  if (!(flags & 0x04) && r.ok) {
    const global = (flags & 0x01) !== 0;
    if (global) {
      keyspace = r.string();
      table = r.string();
    }
    for (let i = 0; i < cols && r.ok; i++) {
      if (!global) {
        const ks = r.string();
        const t = r.string();
        if (i === 0) {
          keyspace = ks;
          table = t;
        }
      }
      r.skip(r.short()); // column name
      r.skipType();
    }
  }
  const m: Record<string, unknown> = {};
  if (keyspace !== '') m.keyspace = keyspace;
  if (table !== '') m.table = table;
  m.flags = rowFlagsName(flags);
  m.col_count = cols;
  if (pkeys !== null) m.pkey_columns = pkeys;
  if (paging !== '') m.paging_state = paging;
  return m;
}

function result(version: number, r: Reader, out: ResponseBody): Record<string, unknown> {
  const kind = r.int();
  const res: Record<string, unknown> = { type: RESULT_TYPES[kind] ?? `unknown_${kind}` };
  switch (kind) {
    case 2: {
      const meta = metadata(version, r, false);
      const n = r.int();
      const rows: Record<string, unknown> = {};
      if (r.ok) rows.num_rows = n;
      rows.meta = meta;
      res.rows = rows;
      out.resource = resource((meta.keyspace as string) ?? '', (meta.table as string) ?? '');
      break;
    }
    case 3: {
      const ks = r.string();
      if (r.ok) {
        res.keyspace = ks;
        out.resource = ks;
      }
      break;
    }
    case 4: {
      const id = r.shortBytesHex();
      if (version >= 5) r.skip(r.short()); // result metadata id
      const p: Record<string, unknown> = { prepared_id: id };
      p.req_meta = metadata(version, r, true);
      if (r.ok) p.resp_meta = metadata(version, r, false);
      res.prepared = p;
      out.preparedId = id;
      const m = p.req_meta as Record<string, string>;
      out.resource = resource(m.keyspace ?? '', m.table ?? '');
      break;
    }
    case 5: {
      const sc = schemaChange(r);
      res.schema_change = sc;
      out.resource = resource((sc.keyspace as string) ?? '', (sc.object as string) ?? '');
      break;
    }
    default:
      break;
  }
  return res;
}

/** SCHEMA_CHANGE (v3 and later): change, target, then by target keyspace [object | name args] */
function schemaChange(r: Reader): Record<string, unknown> {
  const sc: Record<string, unknown> = {};
  const change = r.string();
  const target = r.string();
  if (!r.ok) return sc;
  sc.change = change;
  sc.target = target;
  const ks = r.string();
  if (!r.ok) return sc;
  sc.keyspace = ks;
  if (target === 'TABLE' || target === 'TYPE') {
    const o = r.string();
    if (r.ok) sc.object = o;
  } else if (target === 'FUNCTION' || target === 'AGGREGATE') {
    const name = r.string();
    if (r.ok) sc.name = name;
    const args = r.stringList();
    if (r.ok) sc.args = args;
  }
  return sc;
}

function event(version: number, r: Reader, out: ResponseBody): Record<string, unknown> {
  const type = r.string();
  const e: Record<string, unknown> = { type };
  if (type === 'TOPOLOGY_CHANGE' || type === 'STATUS_CHANGE') {
    const change = r.string();
    if (r.ok) e.change = change;
    const host = r.inetAddr();
    const port = r.int();
    if (r.ok) {
      e.host = host;
      e.port = port;
    }
  } else if (type === 'SCHEMA_CHANGE') {
    const sc = schemaChange(r);
    e.schema_change = sc;
    out.resource = resource((sc.keyspace as string) ?? '', (sc.object as string) ?? '');
  }
  void version;
  return e;
}

function error(version: number, r: Reader, out: ResponseBody): Record<string, unknown> {
  const code = r.int();
  const msg = r.string();
  const e: Record<string, unknown> = { code, msg, type: errorTypeName(code) };
  const d: Record<string, unknown> = {};
  switch (code) {
    case 0x1000: // unavailable
      d.read_consistency = consistencyName(r.short());
      d.required = r.int();
      d.alive = r.int();
      break;
    case 0x1100: // write timeout
      d.read_consistency = consistencyName(r.short());
      d.received = r.int();
      d.blockfor = r.int();
      d.write_type = r.string();
      break;
    case 0x1200: // read timeout
      d.read_consistency = consistencyName(r.short());
      d.received = r.int();
      d.blockfor = r.int();
      d.data_present = r.byte() !== 0;
      break;
    case 0x1300: // read failure: v5 gives a reason per replica, v4 a count
    case 0x1500: {
      // write failure
      d.read_consistency = consistencyName(r.short());
      d.received = r.int();
      d.blockfor = r.int();
      let failures = r.int();
      if (version >= 5) {
        for (let i = 0; i < failures && r.ok && i < 1024; i++) {
          r.inetAddr();
          r.short();
        }
      }
      if (failures > 1024 && version >= 5) failures = 1024;
      d.num_failures = failures;
      if (code === 0x1300) d.data_present = r.byte() !== 0;
      else d.write_type = r.string();
      break;
    }
    case 0x1400: // function failure
      d.keyspace = r.string();
      d.function = r.string();
      d.arg_types = r.stringList();
      break;
    case 0x1700: // CAS write unknown
      d.read_consistency = consistencyName(r.short());
      d.received = r.int();
      d.blockfor = r.int();
      break;
    case 0x2400: // already exists
      d.keyspace = r.string();
      d.table = r.string();
      out.resource = resource(d.keyspace as string, d.table as string);
      break;
    case 0x2500: // unprepared
      d.stmt_id = r.shortBytesHex();
      break;
    default:
      break;
  }
  // details that were cut short are left out
  if (r.ok) {
    for (const _ in d) {
      e.details = d;
      break;
    }
  } else if (out.resource !== '') out.resource = '';
  return e;
}
