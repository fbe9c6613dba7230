/**
 * Memcache's names: packetbeat's command names and classifications (its
 * `memcache.request.command`, `memcache.request.type`), the binary protocol's
 * opcodes and status codes (memcached's protocol_binary.h), the text protocol's
 * response keywords (memcached's protocol.txt).
 */

/** packetbeat's command classification (`memcache.*.type`) */
export const T = {
  unknown: 'UNKNOWN',
  load: 'Load',
  store: 'Store',
  delete: 'Delete',
  counter: 'Counter',
  info: 'Info',
  slabCtrl: 'SlabCtrl',
  lruCrawler: 'LRUCrawler',
  stats: 'Stats',
  success: 'Success',
  fail: 'Fail',
  auth: 'Auth',
} as const;

/** the command of a counter's response, which has no keyword: packetbeat's name for it */
export const COUNTER_RESPONSE = '<counter_op_res>';
export const UNKNOWN = 'UNKNOWN';

/** How a text request line is read, after its command word. */
export const enum Args {
  /** get, gets: keys */
  keys,
  /** gat, gats: exptime, keys */
  expKeys,
  /** set, add, replace, append, prepend: key flags exptime bytes [noreply], then the data */
  store,
  /** cas: key flags exptime bytes cas_unique [noreply], then the data */
  cas,
  /** incr, decr: key delta [noreply] */
  counter,
  /** touch: key exptime [noreply] */
  touch,
  /** delete: key [0] [noreply] */
  del,
  /** flush_all: [exptime] [noreply] */
  flush,
  /** stats, lru_crawler crawl/metadump: the arguments as they are */
  raw,
  /** verbosity: level [noreply] */
  verbosity,
  /** version, quit, and others without arguments */
  none,
  /** slabs reassign/automove, lru_crawler enable/disable/sleep/tocrawl/crawl */
  sub,
  /** meta commands: key, then flags (ms: key datalen flags, then the data) */
  meta,
  metaSet,
}

export interface TextCommand {
  command: string;
  type: string;
  args: Args;
}

const cmd = (command: string, type: string, args: Args): TextCommand => ({ command, type, args });

/** the text protocol's requests, by their command word */
export const TEXT_COMMANDS = new Map<string, TextCommand>([
  ['get', cmd('get', T.load, Args.keys)],
  ['gets', cmd('gets', T.load, Args.keys)],
  ['gat', cmd('gat', T.load, Args.expKeys)],
  ['gats', cmd('gats', T.load, Args.expKeys)],
  ['set', cmd('set', T.store, Args.store)],
  ['add', cmd('add', T.store, Args.store)],
  ['replace', cmd('replace', T.store, Args.store)],
  ['append', cmd('append', T.store, Args.store)],
  ['prepend', cmd('prepend', T.store, Args.store)],
  ['cas', cmd('cas', T.store, Args.cas)],
  ['incr', cmd('incr', T.counter, Args.counter)],
  ['decr', cmd('decr', T.counter, Args.counter)],
  ['touch', cmd('touch', T.store, Args.touch)],
  ['delete', cmd('delete', T.delete, Args.del)],
  ['flush_all', cmd('flush_all', T.delete, Args.flush)],
  ['stats', cmd('stats', T.stats, Args.raw)],
  ['verbosity', cmd('verbosity', T.info, Args.verbosity)],
  ['version', cmd('version', T.info, Args.none)],
  ['quit', cmd('quit', T.info, Args.none)],
  ['slabs', cmd('slabs', T.slabCtrl, Args.sub)],
  ['lru_crawler', cmd('lru_crawler', T.lruCrawler, Args.sub)],
  // the meta protocol (memcached 1.6)
  ['mg', cmd('mg', T.load, Args.meta)],
  ['ms', cmd('ms', T.store, Args.metaSet)],
  ['md', cmd('md', T.delete, Args.meta)],
  ['ma', cmd('ma', T.counter, Args.meta)],
  ['mn', cmd('mn', T.info, Args.none)],
  ['me', cmd('me', T.info, Args.meta)],
]);

/** How a text response line is read, after its keyword. */
export const enum Reply {
  /** a keyword alone: STORED, DELETED, ... */
  plain,
  /** an error with a message: CLIENT_ERROR msg */
  message,
  /** VALUE key flags bytes [cas], then the data; more values follow until END */
  value,
  /** END: the end of VALUE or STAT lines (alone: a miss) */
  end,
  /** STAT name value; more follow until END */
  stat,
  /** VERSION x.y.z */
  version,
  /** VA datalen flags: one value (meta get) */
  metaValue,
}

export interface TextReply {
  command: string;
  type: string;
  reply: Reply;
}

const rep = (command: string, type: string, reply: Reply): TextReply => ({ command, type, reply });

/**
 * The text protocol's responses, by their keyword. EXISTS (a cas that lost the race)
 * is a failure here, as the binary protocol's "Key exists" is; packetbeat calls it a
 * success.
 */
export const TEXT_REPLIES = new Map<string, TextReply>([
  ['VALUE', rep('VALUE', T.load, Reply.value)],
  ['END', rep('END', T.load, Reply.end)],
  ['STORED', rep('STORED', T.success, Reply.plain)],
  ['NOT_STORED', rep('NOT_STORED', T.fail, Reply.plain)],
  ['EXISTS', rep('EXISTS', T.fail, Reply.plain)],
  ['NOT_FOUND', rep('NOT_FOUND', T.fail, Reply.plain)],
  ['TOUCHED', rep('TOUCHED', T.success, Reply.plain)],
  ['DELETED', rep('DELETED', T.success, Reply.plain)],
  ['OK', rep('OK', T.success, Reply.plain)],
  ['RESET', rep('RESET', T.success, Reply.plain)],
  ['ERROR', rep('ERROR', T.fail, Reply.message)],
  ['CLIENT_ERROR', rep('CLIENT_ERROR', T.fail, Reply.message)],
  ['SERVER_ERROR', rep('SERVER_ERROR', T.fail, Reply.message)],
  ['BUSY', rep('BUSY', T.fail, Reply.message)],
  ['BADCLASS', rep('BADCLASS', T.fail, Reply.message)],
  ['NOSPARE', rep('NOSPARE', T.fail, Reply.message)],
  ['NOTFULL', rep('NOTFULL', T.fail, Reply.message)],
  ['UNSAFE', rep('UNSAFE', T.fail, Reply.message)],
  ['SAME', rep('SAME', T.fail, Reply.message)],
  ['STAT', rep('STAT', T.stats, Reply.stat)],
  ['VERSION', rep('VERSION', T.info, Reply.version)],
  // the meta protocol
  ['HD', rep('HD', T.success, Reply.plain)],
  ['VA', rep('VA', T.load, Reply.metaValue)],
  ['EN', rep('EN', T.load, Reply.plain)],
  ['NS', rep('NS', T.fail, Reply.plain)],
  ['EX', rep('EX', T.fail, Reply.plain)],
  ['NF', rep('NF', T.fail, Reply.plain)],
  ['MN', rep('MN', T.info, Reply.plain)],
  ['ME', rep('ME', T.info, Reply.message)],
]);

/** sub-commands of `slabs` and `lru_crawler` (packetbeat's command names) */
export const SUB_COMMANDS = new Map<string, Args>([
  ['slabs reassign', Args.sub],
  ['slabs automove', Args.sub],
  ['lru_crawler enable', Args.none],
  ['lru_crawler disable', Args.none],
  ['lru_crawler sleep', Args.sub],
  ['lru_crawler tocrawl', Args.sub],
  ['lru_crawler crawl', Args.raw],
  ['lru_crawler metadump', Args.raw],
]);

/** Binary protocol opcodes: name (packetbeat's), command, type, quiet, the extras a request carries. */
export interface Opcode {
  name: string;
  command: string;
  type: string;
  quiet: boolean;
  /** extras length a request must carry; -1 when it varies or is unknown */
  requestExtras: number;
  /** does a request carry a key (1), none (0), or either (-1) */
  requestKey: number;
}

export const OPCODES: (Opcode | undefined)[] = new Array(256);
function op(code: number, name: string, command: string, type: string, quiet: boolean, requestExtras: number, requestKey: number): void {
  OPCODES[code] = { name, command, type, quiet, requestExtras, requestKey };
}
op(0x00, 'Get', 'get', T.load, false, 0, 1);
op(0x09, 'GetQ', 'get', T.load, true, 0, 1);
op(0x0c, 'GetK', 'get', T.load, false, 0, 1);
op(0x0d, 'GetKQ', 'get', T.load, true, 0, 1);
op(0x01, 'Set', 'set', T.store, false, 8, 1);
op(0x11, 'SetQ', 'set', T.store, true, 8, 1);
op(0x02, 'Add', 'add', T.store, false, 8, 1);
op(0x12, 'AddQ', 'add', T.store, true, 8, 1);
op(0x03, 'Replace', 'replace', T.store, false, 8, 1);
op(0x13, 'ReplaceQ', 'replace', T.store, true, 8, 1);
op(0x04, 'Delete', 'delete', T.delete, false, 0, 1);
op(0x14, 'DeleteQ', 'delete', T.delete, true, 0, 1);
op(0x05, 'Increment', 'incr', T.counter, false, 20, 1);
op(0x15, 'IncrementQ', 'incr', T.counter, true, 20, 1);
op(0x06, 'Decrement', 'decr', T.counter, false, 20, 1);
op(0x16, 'DecrementQ', 'decr', T.counter, true, 20, 1);
op(0x07, 'Quit', 'quit', T.info, false, 0, 0);
op(0x17, 'QuitQ', 'quit', T.info, true, 0, 0);
op(0x08, 'Flush', 'flush_all', T.delete, false, -1, 0);
op(0x18, 'FlushQ', 'flush_all', T.delete, true, -1, 0);
op(0x0a, 'No-op', 'noop', T.info, false, 0, 0);
op(0x0b, 'Version', 'version', T.info, false, 0, 0);
op(0x0e, 'Append', 'append', T.store, false, 0, 1);
op(0x19, 'AppendQ', 'append', T.store, true, 0, 1);
op(0x0f, 'Prepend', 'prepend', T.store, false, 0, 1);
op(0x1a, 'PrependQ', 'prepend', T.store, true, 0, 1);
op(0x10, 'Stat', 'stats', T.stats, false, 0, -1);
op(0x1b, 'Verbosity', 'verbosity', T.info, false, 4, 0);
op(0x1c, 'Touch', 'touch', T.store, false, 4, 1);
op(0x1d, 'GAT', 'gat', T.load, false, 4, 1);
op(0x1e, 'GATQ', 'gat', T.load, true, 4, 1);
op(0x23, 'GatK', 'gat', T.load, false, 4, 1);
op(0x24, 'GatKQ', 'gat', T.load, true, 4, 1);
op(0x20, 'SASL list mechs', 'sasl_list', T.auth, false, 0, 0);
op(0x21, 'SASL Auth', 'sasl_auth', T.auth, false, 0, 1);
op(0x22, 'SASL Step', 'sasl_step', T.auth, false, 0, 1);

/** the opcodes that answer with the value's flags in the response extras */
export function isGetOpcode(code: number): boolean {
  return code === 0x00 || code === 0x09 || code === 0x0c || code === 0x0d || code === 0x1d || code === 0x1e || code === 0x23 || code === 0x24;
}

export function isCounterOpcode(code: number): boolean {
  return code === 0x05 || code === 0x06 || code === 0x15 || code === 0x16;
}

export const OPCODE_STAT = 0x10;
export const OPCODE_VERSION = 0x0b;
export const OPCODE_QUITQ = 0x17;

/** binary response status names (packetbeat's; memcached's headers put the SASL ones at 0x20, 0x21) */
const STATUS = new Map<number, string>([
  [0x00, 'Success'],
  [0x01, 'Key not found'],
  [0x02, 'Key exists'],
  [0x03, 'Value too large'],
  [0x04, 'Invalid arguments'],
  [0x05, 'Item not stored'],
  [0x06, 'Incr/Decr on non-numeric value.'],
  [0x07, 'The vbucket belongs to another server'],
  [0x20, 'Authentication error'],
  [0x21, 'Authentication continue'],
  [0x81, 'Unknown command'],
  [0x82, 'Out of memory'],
  [0x83, 'Not supported'],
  [0x84, 'Internal error'],
  [0x85, 'Busy'],
  [0x86, 'Temporary failure'],
]);

export function statusName(code: number): string {
  return STATUS.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
}

export function opcodeName(code: number): string {
  return OPCODES[code]?.name ?? `0x${code.toString(16).padStart(2, '0')}`;
}

export const MAGIC_REQUEST = 0x80;
export const MAGIC_RESPONSE = 0x81;
export const HEADER = 24;
