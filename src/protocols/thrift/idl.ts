/**
 * Thrift IDL files (`idlFiles`, packetbeat's `idl_files`), read by
 * @creditkarma/thrift-parser: each service's methods by name, with the names of
 * their arguments and declared exceptions by field id, as packetbeat's
 * thrift_idl.go keeps them (a method defined by two services is the last one's).
 */
import { readFileSync } from 'node:fs';
import { createParser, createScanner, SyntaxType, type ThriftStatement } from '@creditkarma/thrift-parser';

export interface IdlMethod {
  service: string;
  /** argument names by field id */
  params: Map<number, string>;
  /** declared exception names by field id */
  exceptions: Map<number, string>;
  oneway: boolean;
}

export class ThriftIdl {
  readonly methods = new Map<string, IdlMethod>();

  /** the method of this name, or of its last part after `:` (TMultiplexedProtocol's `Service:method`) */
  find(name: string): IdlMethod | undefined {
    const m = this.methods.get(name);
    if (m !== undefined) return m;
    const colon = name.lastIndexOf(':');
    return colon >= 0 ? this.methods.get(name.slice(colon + 1)) : undefined;
  }
}

/**
 * the statements of one IDL file; a syntax error is thrown, naming the file, line and
 * column. The parser stops at the first error: its recovery, which goes on to report
 * more, loops forever on some inputs (`service {`).
 */
export function parseIdl(source: string, file = 'IDL'): ThriftStatement[] {
  const stop = (e: { message: string; loc?: { start: { line: number; column: number } } }): never => {
    throw new IdlError(`Thrift IDL: ${file}:${e.loc ? `${e.loc.start.line}:${e.loc.start.column}: ` : ' '}${e.message}`);
  };
  try {
    return createParser(createScanner(source, stop).scan(), stop).parse().body;
  } catch (e) {
    if (e instanceof IdlError) throw e;
    throw new IdlError(`Thrift IDL: ${file}: not readable (${(e as Error).message})`);
  }
}

class IdlError extends Error {}

/** the methods of every service of these IDL files */
export function loadIdl(files: readonly string[]): ThriftIdl {
  const idl = new ThriftIdl();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`Thrift IDL: ${file}: ${(e as Error).message}`);
    }
    addStatements(idl, parseIdl(text, file));
  }
  return idl;
}

export function addStatements(idl: ThriftIdl, body: readonly ThriftStatement[]): void {
  const byId = (fields: readonly { fieldID: { value: number } | null; name: { value: string } }[]) => {
    const out = new Map<number, string>();
    for (const f of fields) if (f.fieldID !== null) out.set(f.fieldID.value, f.name.value);
    return out;
  };
  for (const s of body) {
    if (s.type !== SyntaxType.ServiceDefinition) continue;
    for (const f of s.functions) idl.methods.set(f.name.value, { service: s.name.value, params: byId(f.fields), exceptions: byId(f.throws), oneway: f.oneway });
  }
}
