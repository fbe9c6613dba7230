import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line: printed as one line, exit status 2. */
export class UsageError extends Error {}

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
  if (!r.values.help && r.positionals.length > positionals) throw new UsageError(`unexpected argument "${r.positionals[positionals]}"`);
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

/** --ports http=8080,8000 (repeatable) */
export function ports(values: unknown): Record<string, number[]> | undefined {
  if (values === undefined) return undefined;
  const out: Record<string, number[]> = {};
  for (const spec of values as string[]) {
    const m = /^([a-z0-9_-]+)=(.+)$/i.exec(spec);
    if (m === null) throw new UsageError(`--ports takes PROTOCOL=PORT[,PORT...], not "${spec}"`);
    const nums = m[2].split(',').map((s) => Number(s.trim()));
    for (const n of nums) if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--ports: "${spec}" has a port outside 1-65535`);
    out[m[1]] = (out[m[1]] ?? []).concat(nums);
  }
  return out;
}
