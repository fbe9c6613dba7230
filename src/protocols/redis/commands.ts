/**
 * What pktflow knows of Redis commands: how to name one (`method`), which argument
 * is its key (`resource`), which arguments are secrets, which commands block, and
 * the pub/sub family whose replies are confirmations.
 */

/** Commands whose second word names a subcommand (Redis' container commands): `CONFIG GET`, `CLIENT LIST`. */
const CONTAINERS = new Set(['ACL', 'CLIENT', 'CLUSTER', 'COMMAND', 'CONFIG', 'DEBUG', 'FUNCTION', 'LATENCY', 'MEMORY', 'MODULE', 'OBJECT', 'PUBSUB', 'SCRIPT', 'SLOWLOG', 'XGROUP', 'XINFO']);

/** Scripts and functions: `EVAL script numkeys key ...`, the key is the fourth word. */
const SCRIPTS = new Set(['EVAL', 'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']);

/** The pub/sub family, by the name its confirmations carry (lower case). */
export const Sub = { none: 0, subscribe: 1, psubscribe: 2, ssubscribe: 3, unsubscribe: 4, punsubscribe: 5, sunsubscribe: 6 } as const;
const SUB_BY_NAME: Record<string, number> = { subscribe: 1, psubscribe: 2, ssubscribe: 3, unsubscribe: 4, punsubscribe: 5, sunsubscribe: 6 };

/** the pub/sub kind of a command or confirmation name (any case), 0 for others */
export function subKind(name: string): number {
  return name.length >= 9 && name.length <= 12 ? (SUB_BY_NAME[name.toLowerCase()] ?? 0) : 0;
}

/** the unsubscribe side of the family */
export const isUnsubscribe = (sub: number): boolean => sub >= Sub.unsubscribe;

/** pub/sub deliveries: pushed to a subscriber, never a reply */
export function deliveryKind(name: string): string {
  if (name.length < 7 || name.length > 8) return '';
  const l = name.toLowerCase();
  return l === 'message' || l === 'pmessage' || l === 'smessage' ? l : '';
}

export interface Named {
  /** the command in upper case, with its subcommand for container commands */
  method: string;
  /** the key (packetbeat: the second word), '' when there is none */
  resource: string;
}

/**
 * `method` and `resource` of a command from its first words. As packetbeat: the
 * command in upper case and the word after it. pktflow names a container command
 * with its subcommand (`CONFIG GET`, `OBJECT ENCODING`) and takes the word after
 * that; takes the first key of a script call (`EVAL s 1 key`); and gives none for
 * AUTH and HELLO, whose words are credentials or a version.
 */
export function nameCommand(args: string[], count: number): Named {
  let method = args[0].toUpperCase();
  let key = 1;
  if (CONTAINERS.has(method) && args.length >= 2) {
    method = `${method} ${args[1].toUpperCase()}`;
    key = 2;
  } else if (SCRIPTS.has(method)) {
    key = Number(args[2]) >= 1 ? 3 : count;
  } else if (method === 'AUTH' || method === 'HELLO') {
    key = count;
  }
  return { method, resource: key < count && key < args.length ? args[key] : '' };
}

/** what `query` shows instead of a secret (Redis' own word in MONITOR and the slow log) */
export const REDACTED = '(redacted)';

const WITH_SECRETS = new Set(['AUTH', 'HELLO', 'MIGRATE', 'CONFIG']);

/** does this command (any case) carry secrets among its words */
export function hasSecrets(cmd: string): boolean {
  return cmd.length >= 4 && cmd.length <= 7 && WITH_SECRETS.has(cmd.toUpperCase());
}

/**
 * After word `i` of a command (`word` in upper case, `cmd` its first word), how many
 * of the following words are secrets: everything after AUTH, the user and password
 * after HELLO's and MIGRATE's AUTH/AUTH2, the value of CONFIG SET requirepass and
 * masterauth.
 */
export function secretsAfter(cmd: string, i: number, word: string): number {
  switch (cmd) {
    case 'AUTH':
      return i === 0 ? Infinity : 0;
    case 'HELLO':
      return i >= 2 && word === 'AUTH' ? 2 : 0;
    case 'MIGRATE':
      return i >= 5 && word === 'AUTH' ? 1 : i >= 5 && word === 'AUTH2' ? 2 : 0;
    case 'CONFIG':
      return i >= 2 && (word === 'REQUIREPASS' || word === 'MASTERAUTH') ? 1 : 0;
    default:
      return 0;
  }
}

/** seconds as a command gives them; 0 (wait for ever) is Infinity; not a number: 0 */
function seconds(text: string, scale: number): number {
  const n = Number(text);
  if (text === '' || !Number.isFinite(n) || n < 0) return 0;
  return n === 0 ? Infinity : n / scale;
}

/**
 * How long a blocking command may legitimately wait for its reply, in seconds (its
 * own timeout; Infinity for 0, "for ever"), so the transaction timeout starts after
 * it. 0 for commands that do not block.
 */
export function blockingSeconds(method: string, args: string[], count: number, last: string): number {
  switch (method) {
    case 'BLPOP':
    case 'BRPOP':
    case 'BZPOPMIN':
    case 'BZPOPMAX':
    case 'BLMOVE':
    case 'BRPOPLPUSH':
      return seconds(last, 1);
    case 'BLMPOP':
    case 'BZMPOP':
      return seconds(args[1] ?? '', 1);
    case 'WAIT':
      return count === 3 ? seconds(args[2], 1000) : 0;
    case 'WAITAOF':
      return count === 4 ? seconds(args[3], 1000) : 0;
    case 'XREAD':
    case 'XREADGROUP':
      for (let i = 1; i + 1 < args.length; i++) if (args[i].toUpperCase() === 'BLOCK') return seconds(args[i + 1], 1000);
      return 0;
    default:
      return 0;
  }
}

/**
 * An inline command's words, as Redis splits them (sdssplitargs): separated by
 * spaces, in "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, or in 'single
 * quotes' with \'. null when a quote is unbalanced (Redis answers with a protocol
 * error then).
 */
export function splitInline(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line.charCodeAt(i))) i++;
    if (i >= n) return out;
    let word = '';
    let quote = 0; // 0 none, 34 ", 39 '
    for (;;) {
      if (i >= n) {
        if (quote !== 0) return null;
        break;
      }
      const c = line.charCodeAt(i);
      if (quote === 34) {
        if (c === 92 && i + 3 < n && line[i + 1] === 'x' && isHex(line.charCodeAt(i + 2)) && isHex(line.charCodeAt(i + 3))) {
          word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else if (c === 92 && i + 1 < n) {
          const e = line[i + 1];
          word += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === 'b' ? '\b' : e === 'a' ? '\x07' : e;
          i += 2;
        } else if (c === 34) {
          // a closing quote must be followed by a space or the end
          if (i + 1 < n && !isSpace(line.charCodeAt(i + 1))) return null;
          i++;
          break;
        } else {
          word += line[i++];
        }
      } else if (quote === 39) {
        if (c === 92 && i + 1 < n && line[i + 1] === "'") {
          word += "'";
          i += 2;
        } else if (c === 39) {
          if (i + 1 < n && !isSpace(line.charCodeAt(i + 1))) return null;
          i++;
          break;
        } else {
          word += line[i++];
        }
      } else if (isSpace(c)) {
        break;
      } else if (c === 34 || c === 39) {
        quote = c;
        i++;
      } else {
        word += line[i++];
      }
    }
    out.push(word);
  }
}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9 || c === 11 || c === 12 || c === 0;
const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
