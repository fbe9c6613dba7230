import * as path from 'node:path';
import ts from 'typescript';

/**
 * Type-check a pipeline file (and what it imports) with the project's compiler
 * options. Returns the errors as "file:line:col: message" lines, [] when clean.
 */
export function typecheck(file: string): string[] {
  const configPath = ts.findConfigFile(path.dirname(path.resolve(file)), ts.sys.fileExists);
  let options: ts.CompilerOptions = { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true, skipLibCheck: true };
  if (configPath !== undefined) {
    const cfg = ts.readConfigFile(configPath, ts.sys.readFile);
    if (!cfg.error) options = ts.parseJsonConfigFileContent(cfg.config, ts.sys, path.dirname(configPath)).options;
  }
  const program = ts.createProgram([path.resolve(file)], { ...options, noEmit: true });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map((d) => {
      let text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      // definePipeline's messages come as the type a stage or sink is not assignable to: say just them
      const own = /is not assignable to type '"((?:the source|stage \d+|the last stage)[^"]*)"'/.exec(text);
      if (own !== null) text = own[1];
      if (d.file === undefined || d.start === undefined) return text;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${path.relative(process.cwd(), d.file.fileName)}:${line + 1}:${character + 1}: ${text}`;
    });
}
