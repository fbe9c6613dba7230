import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Type-check a pipeline file (and what it imports) with the project's compiler
 * options. Returns the errors as "file:line:col: message" lines, [] when clean.
 *
 * A check reads some 400 files (the pipeline, pktflow's sources, @types/node, ...)
 * and takes seconds. Its result is kept in the `cache` folder with everything the compiler
 * asked of the file system on the way: the text of every file it read (as a hash),
 * every file and directory whose existence it tested, every directory it listed,
 * every path it resolved, the working directory, the environment variables it
 * read, and the compiler's version. The next check of the same file asks the same
 * questions again, without loading the compiler, and returns the kept result only if
 * every answer is the same: then the compiler would see exactly the same input.
 * Any change (an edited import, a new file where module resolution looked, an
 * upgraded package) is a miss, and the compiler runs, incrementally (its build info
 * is kept beside), so only what changed is checked again.
 *
 * `cache` null: no cache. Default: $PKTFLOW_CACHE_DIR, else $XDG_CACHE_HOME/pktflow,
 * else ~/.cache/pktflow. A cache that cannot be read or written is only slower.
 */
export function typecheck(file: string, cache: string | null = defaultCacheDir()): string[] {
  const root = path.resolve(file);
  const cacheDir = cache === null ? null : path.resolve(cache);
  const version = compilerVersion();
  const base = cacheDir === null ? null : path.join(cacheDir, 'typecheck', createHash('sha256').update(`${FORMAT}\0${version}\0${root}`).digest('hex').slice(0, 32));
  let found = base === null ? null : cached(`${base}.json`, root, version);
  if (found === null) {
    const run = check(root, base === null ? null : `${base}.tsbuildinfo`, cacheDir);
    found = run.found;
    if (base !== null) save(`${base}.json`, { format: FORMAT, compiler: version, root, questions: run.questions, found });
  }
  return found.map(render);
}

export function defaultCacheDir(): string {
  if (process.env.PKTFLOW_CACHE_DIR) return process.env.PKTFLOW_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'pktflow');
}

/** bump when what is kept, or how a check is made, changes */
const FORMAT = 1;

/** one error: where (an absolute path, or null), and what */
interface Found {
  file: string | null;
  line: number;
  col: number;
  text: string;
}

/** a question the compiler asked of the file system, and the answer it got */
type Question = [kind: 'read' | 'file' | 'dir' | 'list' | 'real' | 'cwd' | 'env', arg: string, answer: string | null];

interface Entry {
  format: number;
  compiler: string;
  root: string;
  questions: Question[];
  found: Found[];
}

function render(f: Found): string {
  return f.file === null ? f.text : `${path.relative(process.cwd(), f.file)}:${f.line}:${f.col}: ${f.text}`;
}

function compilerVersion(): string {
  return (JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')) as { version: string }).version;
}

const hash = (text: string) => createHash('sha1').update(text).digest('base64');

/** the answer to a question now: the same functions the compiler's file system uses (ts.sys), so an unchanged file system answers alike */
function answer(kind: Question[0], arg: string): string | null {
  switch (kind) {
    case 'read': {
      let text: string;
      try {
        text = readFileSync(arg, 'utf8');
      } catch {
        return null;
      }
      // the compiler drops a byte order mark (a UTF-16 file never matches, and is checked every time)
      return hash(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    }
    case 'file':
      return String(statSync(arg, { throwIfNoEntry: false })?.isFile() ?? false);
    case 'dir':
      return String(statSync(arg, { throwIfNoEntry: false })?.isDirectory() ?? false);
    case 'list':
      return JSON.stringify(directories(arg));
    case 'real':
      try {
        return realpathSync.native(arg);
      } catch {
        return arg;
      }
    case 'cwd':
      return process.cwd();
    case 'env':
      return process.env[arg] ?? null;
  }
}

/** a directory's subdirectories, symbolic links followed, sorted (as ts.sys.getDirectories) */
function directories(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() || (e.isSymbolicLink() && statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory())) out.push(e.name);
    }
  } catch {
    return [];
  }
  return out.sort();
}

/** the kept result, if every question has the same answer now */
function cached(entryPath: string, root: string, version: string): Found[] | null {
  let e: Entry;
  try {
    e = JSON.parse(readFileSync(entryPath, 'utf8')) as Entry;
  } catch {
    return null;
  }
  if (e.format !== FORMAT || e.compiler !== version || e.root !== root) return null;
  for (const [kind, arg, was] of e.questions) if (answer(kind, arg) !== was) return null;
  return e.found;
}

function save(entryPath: string, e: Entry): void {
  writeWhole(entryPath, JSON.stringify(e));
}

/** a cache file, whole or not at all (another run may be reading it); one that cannot be written only makes the next check slower */
function writeWhole(file: string, data: string): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch {
    // only slower next time
  }
}

/** run the compiler, noting every question it asks of the file system */
function check(root: string, buildInfo: string | null, cacheDir: string | null): { found: Found[]; questions: Question[] } {
  // loaded only here: the compiler is large, and a cached check does without it
  const ts = require('typescript') as typeof import('typescript');
  const questions = new Map<string, Question>();
  const ask = <T>(kind: Question[0], arg: string, result: T, asked: string | null = result === undefined ? null : String(result)): T => {
    // the cache's own files are not input
    if (cacheDir === null || !arg.startsWith(cacheDir + path.sep)) {
      const k = `${kind}\0${arg}`;
      if (!questions.has(k)) questions.set(k, [kind, arg, asked]);
    }
    return result;
  };
  const fileExists = (f: string) => ask('file', f, ts.sys.fileExists(f));
  const readFile = (f: string) => {
    const text = ts.sys.readFile(f);
    return ask('read', f, text, text === undefined ? null : hash(text));
  };

  const configPath = ts.findConfigFile(path.dirname(root), fileExists);
  let options: import('typescript').CompilerOptions = { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, skipLibCheck: true };
  if (configPath !== undefined) {
    const cfg = ts.readConfigFile(configPath, readFile);
    // only the options are wanted: the config's own file list is not read
    const parseHost = { useCaseSensitiveFileNames: ts.sys.useCaseSensitiveFileNames, fileExists, readFile, readDirectory: () => [] };
    if (!cfg.error) options = ts.parseJsonConfigFileContent(cfg.config, parseHost, path.dirname(configPath)).options;
  }
  options = { ...options, noEmit: true, incremental: buildInfo !== null, tsBuildInfoFile: buildInfo ?? undefined };

  const host = ts.createIncrementalCompilerHost(options);
  host.fileExists = fileExists;
  host.readFile = readFile;
  host.directoryExists = (d) => ask('dir', d, ts.sys.directoryExists(d));
  host.getDirectories = (d) => {
    const list = ts.sys.getDirectories(d);
    return ask('list', d, list, JSON.stringify(list));
  };
  host.realpath = (p) => ask('real', p, ts.sys.realpath ? ts.sys.realpath(p) : p);
  host.getCurrentDirectory = () => ask('cwd', '', ts.sys.getCurrentDirectory());
  host.getEnvironmentVariable = (name) => ask('env', name, process.env[name] ?? '', process.env[name] ?? null);

  const builder = ts.createIncrementalProgram({ rootNames: [root], options, host });
  const diagnostics = ts.sortAndDeduplicateDiagnostics([
    ...builder.getConfigFileParsingDiagnostics(),
    ...builder.getOptionsDiagnostics(),
    ...builder.getGlobalDiagnostics(),
    ...builder.getSyntacticDiagnostics(),
    ...builder.getSemanticDiagnostics(),
  ]);
  if (buildInfo !== null) {
    // with noEmit, emitting writes only the build info
    builder.emit(undefined, writeWhole);
  }
  const found = diagnostics
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d): Found => {
      let text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      // definePipeline's messages come as the type a stage or sink is not assignable to: say just them
      const own = /is not assignable to type '"((?:the source|stage \d+|the last stage)[^"]*)"'/.exec(text);
      if (own !== null) text = own[1];
      if (d.file === undefined || d.start === undefined) return { file: null, line: 0, col: 0, text };
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return { file: d.file.fileName, line: line + 1, col: character + 1, text };
    });
  return { found, questions: [...questions.values()] };
}
