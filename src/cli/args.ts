import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends Error {
  /** the command whose --help to point at ('read', 'topics create'); set by the dispatcher */
  command?: string;
}

/** --help (or -h) was given: the dispatcher prints the command's help */
export class HelpRequest extends Error {}

/** A command of the `pktflow` CLI: one entry of the table that drives dispatch and help. */
export interface Command {
  name: string;
  /** the arguments after the name, for the command list: `<file|->...` */
  args: string;
  /** one line for the command list */
  summary: string;
  /** the text `--help` prints */
  help: string;
  /** runs the command with the arguments after its name; or ... */
  run?(args: string[]): number | Promise<number>;
  /** ... a group of commands (`topics create`) */
  subcommands?: readonly Command[];
}

/** the command list of a help text, from the table */
export function commandList(commands: readonly Command[]): string {
  const rows = commands.map((c) => [`${c.name}${c.args ? ` ${c.args}` : ''}`, c.summary]);
  const width = Math.max(...rows.map((r) => r[0].length)) + 2;
  return rows.map(([a, s]) => `  ${a.padEnd(width)}${s}`).join('\n');
}

export function parse(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  positionals: number,
): { values: Record<string, unknown>; positionals: string[] } {
  let r;
  try {
    r = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    // node's messages are long and mention internals; keep the essential part
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/, '').replace(/^Unknown option/, 'unknown option'));
  }
  if (r.values.help) throw new HelpRequest();
  if (r.positionals.length > positionals) throw new UsageError(`unexpected argument "${r.positionals[positionals]}"`);
  return r;
}

export function list(v: unknown): string[] | undefined {
  if (typeof v !== 'string') return undefined;
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export function seconds(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} takes a number of seconds, not "${v}"`);
  return n;
}

export function positiveInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive whole number, not "${v}"`);
  return n;
}

/** a protocol name the registry knows, else a usage error listing those it does */
export function knownProtocol(name: string, known: readonly string[], flag: string): string {
  if (!known.includes(name)) throw new UsageError(`${flag}: unknown protocol "${name}" (known: ${known.join(', ')})`);
  return name;
}

/** --ports http=8080,8000-8010 (repeatable): ports and inclusive ranges of a known protocol */
export function ports(values: unknown, known: readonly string[]): Record<string, number[]> | undefined {
  if (values === undefined) return undefined;
  const out: Record<string, number[]> = {};
  for (const spec of values as string[]) {
    const m = /^([a-z0-9_-]+)=(.+)$/i.exec(spec);
    if (m === null) throw new UsageError(`--ports takes PROTOCOL=PORT[,FROM-TO...], not "${spec}"`);
    const name = knownProtocol(m[1], known, '--ports');
    const nums: number[] = [];
    for (const item of m[2].split(',').map((s) => s.trim())) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(item);
      if (r === null) throw new UsageError(`--ports: "${item}" in "${spec}" is not a port number or range (PORT or FROM-TO)`);
      const from = Number(r[1]);
      const to = r[2] === undefined ? from : Number(r[2]);
      for (const n of [from, to]) if (n < 1 || n > 65535) throw new UsageError(`--ports: port ${n} in "${spec}" is outside 1-65535`);
      if (to < from) throw new UsageError(`--ports: range "${item}" in "${spec}" ends before it starts`);
      for (let n = from; n <= to; n++) nums.push(n);
    }
    out[name] = (out[name] ?? []).concat(nums);
  }
  return out;
}

export const BROKERS_FLAG = { brokers: { type: 'string' } } as const;
export const BROKERS_HELP = '  --brokers <host:port,...>  Kafka bootstrap brokers (default 127.0.0.1:9092)';

export function brokers(values: Record<string, unknown>): string[] | undefined {
  return list(values.brokers);
}
