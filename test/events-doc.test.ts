/**
 * docs/events.md and the `Event` types (src/events/types.ts) describe the same
 * fields with the same types, both ways; and the events the analyzers really emit
 * fit those types. How the document's tables are read: docs/events.md, "Keeping this
 * page and the types together".
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { LinkType, makeFrame, type Frame } from '../src/core/frame';
import { icmpEcho, ipv4, ipv6, udp } from './gen/packets';
import { fixtureFrames, pushThroughStages, ROOT } from './helpers';
import type { EventObject } from '../src/events/transaction';

/** what a field holds, in the document's words: string, number, boolean, string[], object, object[] */
type Kind = string;

/** a declared field: its kind, and for objects their fields */
interface Node {
  kind: Kind;
  optional: boolean;
  /** named fields of an object, or of each element of an object[] */
  fields?: Map<string, Node>;
  /** an object whose keys vary (Record<string, V>): the kind of its values */
  values?: Kind;
}

const DOC = path.join(ROOT, 'docs', 'events.md');

/** the `Event` union's members, by `type`, as trees of fields */
function declaredEvents(): Map<string, Node> {
  const file = path.join(ROOT, 'src', 'events', 'types.ts');
  const program = ts.createProgram([file], { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022 });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  const eventSymbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === 'Event')!;
  const union = checker.getDeclaredTypeOfSymbol(eventSymbol);

  const kindOf = (t: ts.Type, where: string): Node => {
    const every = (flag: ts.TypeFlags) => (t.isUnion() ? t.types.every((m) => (m.flags & flag) !== 0) : (t.flags & flag) !== 0);
    if (every(ts.TypeFlags.StringLike)) return { kind: 'string', optional: false };
    if (every(ts.TypeFlags.NumberLike)) return { kind: 'number', optional: false };
    if (every(ts.TypeFlags.BooleanLike)) return { kind: 'boolean', optional: false };
    if (checker.isArrayType(t)) {
      const element = kindOf(checker.getTypeArguments(t as ts.TypeReference)[0], `${where}[]`);
      return element.kind === 'object' ? { kind: 'object[]', optional: false, fields: element.fields } : { kind: `${element.kind}[]`, optional: false };
    }
    if (t.flags & ts.TypeFlags.Object || t.isIntersection()) {
      const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
      if (index === undefined) return { kind: 'object', optional: false, fields: fieldsOf(t, where) };
      // named fields beside varying keys (HTTP headers): the varying keys hold what the named
      // fields do not, so their kind is the index type's other than the named fields' kinds
      const named = checker.getPropertiesOfType(t).length > 0 ? fieldsOf(t, where) : undefined;
      if (named !== undefined) {
        const members = (index.type.isUnion() ? index.type.types : [index.type]).filter((m) => !(m.flags & ts.TypeFlags.Undefined));
        const kinds = [...new Set(members.map((m) => kindOf(m, `${where}.*`).kind))];
        // named fields & Record<string, V> (HTTP headers): the varying keys hold V
        if (t.isIntersection()) return { kind: 'object', optional: false, fields: named, values: kinds.join('|') };
        const own = kinds.filter((k) => ![...named.values()].some((f) => f.kind === k) || kinds.length === 1);
        return { kind: 'object', optional: false, fields: named, values: own.length === 1 ? own[0] : kinds.join('|') };
      }
      // the values' own fields are not followed: the counters of a stats event nest as deep as a stage likes;
      // lists are values of their own kind (string[])
      const list = checker.isArrayType(index.type);
      // a union of kinds (an AMQP field table's values: string | number | boolean | null | table): each is allowed
      const kindsOf = (u: ts.UnionType) => [...new Set(u.types.map((m) => (m.flags & ts.TypeFlags.StringLike ? 'string' : m.flags & ts.TypeFlags.NumberLike ? 'number' : m.flags & ts.TypeFlags.BooleanLike ? 'boolean' : m.flags & ts.TypeFlags.Null ? 'null' : 'object')))].join('|');
      return { kind: 'object', optional: false, values: !list && index.type.isUnion() ? kindsOf(index.type) : !list && index.type.flags & ts.TypeFlags.Object ? 'object' : kindOf(index.type, `${where}.*`).kind };
    }
    throw new Error(`${where}: a type the document has no word for: ${checker.typeToString(t)}`);
  };
  const fieldsOf = (t: ts.Type, where: string): Map<string, Node> => {
    const out = new Map<string, Node>();
    for (const p of checker.getPropertiesOfType(t)) {
      const node = kindOf(checker.getNonNullableType(checker.getTypeOfSymbol(p)), `${where}.${p.name}`);
      node.optional = (p.flags & ts.SymbolFlags.Optional) !== 0;
      out.set(p.name, node);
    }
    return out;
  };

  const out = new Map<string, Node>();
  for (const member of union.isUnion() ? union.types : [union]) {
    const typeProp = checker.getPropertyOfType(member, 'type')!;
    const literal = checker.getTypeOfSymbol(typeProp);
    assert.ok(literal.isStringLiteral(), `${checker.typeToString(member)}: \`type\` must be one string literal`);
    out.set(literal.value, { kind: 'object', optional: false, fields: fieldsOf(member, literal.value) });
  }
  return out;
}

/** every field path with its kind, as the document writes them: `dns.answers[]` for a list of objects, `dns.answers[].name` for their fields, `x.*` for the values of varying keys */
function flatten(node: Node, prefix = '', out = new Map<string, Kind>()): Map<string, Kind> {
  for (const [name, child] of node.fields ?? []) {
    const p = prefix + name + (child.kind === 'object[]' ? '[]' : '');
    if (child.fields === undefined || child.kind === 'object[]' || child.values !== undefined) out.set(p, child.kind);
    if (child.values !== undefined) out.set(`${p}.*`, child.values);
    if (child.fields !== undefined) flatten(child, `${p}.`, out);
  }
  return out;
}

interface DocField {
  kind: Kind;
  line: number;
}

/** the document's tables: for each event type, every field with its type and the line that says so */
function documentedEvents(text: string): Map<string, Map<string, DocField>> {
  const out = new Map<string, Map<string, DocField>>();
  const aliases: { types: string[]; from: string; to: string; line: number }[] = [];
  const headings: { level: number; types: string[] }[] = [];
  const lines = text.split('\n');
  let columns: { field: number; type: number } | null = null;
  // a table of options or of differences from packetbeat (a column "option" or "packetbeat") describes no fields
  let options = false;
  const fail = (line: number, why: string) => assert.fail(`docs/events.md:${line}: ${why}`);

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const n = i + 1;
    const heading = /^(#+)\s/.exec(line);
    if (heading !== null) {
      while (headings.length > 0 && headings[headings.length - 1].level >= heading[1].length) headings.pop();
      headings.push({ level: heading[1].length, types: [...line.matchAll(/`type: (\w+)`/g)].map((m) => m[1]) });
      continue;
    }
    if (!line.startsWith('|')) {
      columns = null;
      options = false;
      continue;
    }
    if (options) continue;
    const cells = line.slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined).split('|').map((c) => c.trim());
    if (columns === null && (cells.includes('option') || cells.includes('packetbeat'))) {
      options = true;
      continue;
    }
    if (columns === null) {
      // a table's header row
      columns = { field: cells.indexOf('field'), type: cells.indexOf('type') };
      if (columns.field < 0 || columns.type < 0) fail(n, 'a table of fields needs the columns "field" and "type"');
      i++; // the |---| row
      continue;
    }
    const types = [...headings].reverse().find((h) => h.types.length > 0)?.types;
    if (types === undefined) fail(n, 'a table under no heading that names its event types (`type: x`)');
    const paths: string[] = [];
    for (const m of cells[columns.field].matchAll(/`([^`]+)`/g)) {
      const p = m[1];
      if (!p.startsWith('.')) paths.push(p);
      else if (paths.length === 0) fail(n, `${p} has no path before it`);
      else paths.push(paths[paths.length - 1].replace(/\.[^.]+$/, '') + p);
    }
    if (paths.length === 0) fail(n, 'no field in the field cell');
    const kinds = cells[columns.type] === '' ? [] : cells[columns.type].split(',').map((k) => k.trim());
    if (kinds.length === 0) {
      // `x.*` | | as `y.*`
      const to = /`([^`]+)\.\*`/.exec(cells.slice(columns.type + 1).join('|'))?.[1];
      if (to === undefined || !paths.every((p) => p.endsWith('.*'))) fail(n, 'a row without a type must be `x.*` with the meaning naming `y.*`');
      for (const p of paths) aliases.push({ types: types!, from: p.slice(0, -2), to: to!, line: n });
      continue;
    }
    if (kinds.length !== 1 && kinds.length !== paths.length) fail(n, `${paths.length} fields but ${kinds.length} types`);
    for (const t of types!) {
      let fields = out.get(t);
      if (fields === undefined) out.set(t, (fields = new Map()));
      paths.forEach((p, j) => {
        const kind = kinds.length === 1 ? kinds[0] : kinds[j];
        const before = fields!.get(p);
        if (before !== undefined && before.kind !== kind) fail(n, `${p} is ${kind} here but ${before.kind} on line ${before.line}`);
        fields!.set(p, { kind, line: n });
      });
    }
  }
  // `client.*` as `source.*`: once every table is read, so the copy has the fields of every section
  for (const a of aliases) {
    for (const t of a.types) {
      const fields = out.get(t)!;
      for (const [p, f] of [...fields]) {
        if (p === a.to || p.startsWith(`${a.to}.`)) fields.set(a.from + p.slice(a.to.length), { kind: f.kind, line: a.line });
      }
    }
  }
  return out;
}

/** where the document and the types disagree, one line each */
function compare(declared: Map<string, Node>, documented: Map<string, Map<string, DocField>>): string[] {
  const problems: string[] = [];
  for (const t of documented.keys()) if (!declared.has(t)) problems.push(`docs/events.md documents \`type: ${t}\`, which is not in the Event union`);
  for (const [t, node] of declared) {
    const doc = documented.get(t);
    if (doc === undefined) {
      problems.push(`\`type: ${t}\` is in the Event union but has no table in docs/events.md`);
      continue;
    }
    const types = flatten(node);
    for (const [p, f] of doc) {
      const wildcard = types.get(p.replace(/\.[^.]+$/, '.*'));
      const kind = types.get(p) ?? wildcard;
      if (kind === undefined) problems.push(`docs/events.md:${f.line}: \`${p}\` (${f.kind}) is not declared in the ${t} event type`);
      else if (kind !== f.kind) problems.push(`docs/events.md:${f.line}: \`${p}\` is ${f.kind} in the document but ${kind} in the ${t} event type`);
    }
    for (const [p, kind] of types) {
      if (!p.endsWith('.*') && !doc.has(p)) problems.push(`${t} event type: \`${p}\` (${kind}) is not in docs/events.md`);
    }
  }
  return problems;
}

const kindOfValue = (v: unknown): Kind => (Array.isArray(v) ? (v.length === 0 ? 'array' : `${kindOfValue(v[0])}[]`) : v === null ? 'null' : typeof v);

/** where an emitted event does not fit its declared type, one line each */
function misfits(value: Record<string, unknown>, node: Node, where: string, out: string[]): void {
  const at = (name: string) => (where === '' ? name : `${where}.${name}`);
  for (const [name, field] of node.fields ?? []) {
    if (!(name in value) && !field.optional) out.push(`${at(name)} is missing`);
  }
  for (const [name, v] of Object.entries(value)) {
    const p = at(name);
    const field = node.fields?.get(name);
    const kind = kindOfValue(v);
    if (field === undefined) {
      if (node.values === undefined) out.push(`${p} is not declared`);
      else if (!node.values.split('|').includes(kind)) out.push(`${p} is ${kind}, declared ${node.values}`);
    } else if (kind !== field.kind && !(kind === 'array' && field.kind.endsWith('[]'))) {
      out.push(`${p} is ${kind}, declared ${field.kind}`);
    } else if (field.kind === 'object') misfits(v as Record<string, unknown>, field, p, out);
    else if (field.kind === 'object[]') (v as Record<string, unknown>[]).forEach((e, i) => misfits(e, field, `${p}[${i}]`, out));
  }
}

/** ICMP (none in the captures): an answered and an unanswered echo, an unreachable quoting UDP */
function icmpFrames(): Frame[] {
  const unreachable = Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), ipv4('10.0.0.1', '192.0.2.9', 17, udp(40000, 33434, Buffer.alloc(8))).subarray(0, 28)]);
  const packets = [
    ipv4('10.0.0.1', '10.0.0.2', 1, icmpEcho(8, 7, 1)),
    ipv4('10.0.0.2', '10.0.0.1', 1, icmpEcho(0, 7, 1)),
    ipv6('2001:db8::1', '2001:db8::2', 58, icmpEcho(128, 9, 1)),
    ipv4('192.0.2.254', '10.0.0.1', 1, unreachable),
  ];
  return packets.map((b, i) => makeFrame(2_000_000_000 + i, 0, LinkType.RAW, b.length, 0, b));
}

describe('docs/events.md and the Event types', { timeout: 120_000 }, () => {
  const declared = declaredEvents();

  it('document the same fields with the same types, both ways, for every event type', () => {
    const problems = compare(declared, documentedEvents(readFileSync(DOC, 'utf8')));
    assert.deepEqual(problems, []);
  });

  it('a field added on one side only, or with another type, is reported with its line', () => {
    const text = readFileSync(DOC, 'utf8')
      .replace('| `dns.id` | number |', '| `dns.id` | string |')
      .replace('| `url.scheme` | string | `http` |', '| `url.scheme` | string | `http` |\n| `url.fragment` | string | never sent |')
      .replace(/\| `user_agent.original` \|.*\n/, '');
    const problems = compare(declared, documentedEvents(text));
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[0], /^docs\/events\.md:\d+: `url\.fragment` \(string\) is not declared in the http event type$/);
    assert.match(problems[1], /^http event type: `user_agent\.original` \(string\) is not in docs\/events\.md$/);
    assert.match(problems[2], /^docs\/events\.md:\d+: `dns\.id` is string in the document but number in the dns event type$/);
  });

  it('every event emitted on the fixtures fits its type: declared fields only, of their types, the required ones present', () => {
    const { events } = pushThroughStages([...fixtureFrames(), ...icmpFrames()], {
      tcp: { flows: {} },
      anomalies: true,
      // every option that adds fields on: their fields are checked too
      options: {
        http: { sendHeaders: 'all', includeBodyFor: ['text/html', 'text/plain'], sendRequest: true, sendResponse: true, realIpHeader: 'host', splitCookie: true, detectMimeType: true },
        dns: { includeAuthorities: true, includeAdditionals: true },
        mongodb: { sendRequest: true, sendResponse: true },
      },
    });
    const problems: string[] = [];
    const seen = new Set<string>();
    // the events as the plain objects they are: what is checked is whether they fit the types
    const objects = events as unknown as EventObject[];
    for (const e of [...objects, { type: 'stats', stats: { decode: { frames: 1, dropped: { short: 0 } } } }]) {
      seen.add(e.type);
      const node = declared.get(e.type);
      const found: string[] = [];
      if (node === undefined) found.push('a type the Event union does not have');
      else misfits(e, node, '', found);
      for (const f of found) problems.push(`${e.type} event: ${f}`);
    }
    assert.deepEqual([...new Set(problems)], []);
    assert.deepEqual([...seen].sort(), [...declared.keys()].sort(), 'every kind of event was checked');

    // and the check sees what does not fit
    const dns = structuredClone(objects.find((e) => e.type === 'dns' && e.dns.answers !== undefined)!);
    dns.dns.id = String(dns.dns.id);
    dns.dns.answers[0].color = 'blue';
    delete dns.network;
    const found: string[] = [];
    misfits(dns, declared.get('dns')!, '', found);
    assert.deepEqual(found, ['network is missing', 'dns.id is string, declared number', 'dns.answers[0].color is not declared']);
  });
});
