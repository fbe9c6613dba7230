import type { Stats, StatValue } from '../core/stage';

/** `a.b.c=1 a.d=2`: one line per stage, greppable, zero counters left out; null when all are zero */
export function formatStats(name: string, s: Stats): string | null {
  const parts: string[] = [];
  const walk = (prefix: string, v: StatValue) => {
    if (typeof v === 'number') {
      if (v !== 0) parts.push(`${prefix}=${v}`);
      return;
    }
    for (const k of Object.keys(v)) walk(prefix === '' ? k : `${prefix}.${k}`, v[k]);
  };
  walk('', s);
  return parts.length > 0 ? `${name}: ${parts.join(' ')}` : null;
}
