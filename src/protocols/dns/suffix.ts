import type { parse as Parse } from 'tldts';

/** tldts and its list (~200 KB) are loaded by the first DNS question, not at every start */
let parse: typeof Parse | null = null;

/** A name split by the public suffix list: `www` + `example.co.uk`, whose suffix is `co.uk`. */
export interface DomainParts {
  /** the registrable domain: the public suffix and one label more */
  domain: string;
  /** what precedes it, '' when nothing */
  subdomain: string;
  /** the public suffix (ECS top_level_domain) */
  suffix: string;
}

/**
 * The public suffix list (ICANN and private sections, as golang.org/x/net/publicsuffix
 * that packetbeat uses; the list ships with `tldts`). Names whose last label the list
 * does not know take it as their suffix (the list's `*` rule): `example.test` → `test`.
 * The input is a DNS name already, so tldts neither extracts nor validates a hostname
 * (underscore labels such as `_http._tcp` are names too).
 */
const OPTIONS = { extractHostname: false, validateHostname: false, detectIp: false, allowPrivateDomains: true, mixedInputs: false } as const;

/**
 * A question name's registrable domain and the parts around it, in lower case; null
 * when it has none (a public suffix itself, a single label, the root, or a name with
 * escaped characters, which is no host name). Called once per event; it costs about
 * 1.3 µs, 2% of a DNS transaction in `pktflow read` (profiled on 100,000 queries over
 * 2,000 names), so a cache in front of it would not pay for its memory.
 */
export function domainParts(name: string): DomainParts | null {
  parse ??= (require('tldts') as typeof import('tldts')).parse;
  if (name.indexOf('\\') >= 0) return null;
  const r = parse(name.toLowerCase(), OPTIONS);
  if (r.domain === null || r.publicSuffix === null) return null;
  return { domain: r.domain, subdomain: r.subdomain ?? '', suffix: r.publicSuffix };
}
