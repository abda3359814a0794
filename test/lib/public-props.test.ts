/**
 * The props of the package's constructs stay within what jsii (the compiler behind CDK's Python, Java, C# and Go
 * packages) can express, so a jsii build stays a packaging step rather than an API change: no string-literal unions,
 * no tuples, no readonly arrays, no object types other than named interfaces and string-keyed maps. The
 * exceptions are listed with the README's "Before a jsii build" section, which says what remains.
 */
import * as path from 'node:path';
import ts from '@typescript/typescript6';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..', '..');

/** Props the README lists as what remains before a jsii build (valibot-inferred config types in readonly arrays). */
const KNOWN_EXCEPTIONS = new Set(['WebrunStackProps.schedules', 'WebrunStackProps.triggers', 'WebrunTriggersProps.schedules', 'WebrunTriggersProps.triggers']);

let checker: ts.TypeChecker;
let propsInterfaces: Array<{ name: string; type: ts.Type; declaration: ts.Node }>;

beforeAll(() => {
  const program = ts.createProgram([path.join(ROOT, 'index.ts')], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, skipLibCheck: true, noEmit: true });
  checker = program.getTypeChecker();
  const entry = checker.getSymbolAtLocation(program.getSourceFile(path.join(ROOT, 'index.ts'))!)!;
  propsInterfaces = checker.getExportsOfModule(entry)
    .map((s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s))
    .filter((s) => s.flags & ts.SymbolFlags.Interface && /(Props|Options)$/.test(s.name))
    .map((s) => ({ name: s.name, type: checker.getDeclaredTypeOfSymbol(s), declaration: s.declarations![0] }));
}, 60_000);

/** Why jsii could not express `type`, or undefined when it can. */
function problemOf(type: ts.Type): string | undefined {
  if (type.isUnion()) {
    const members = type.types.filter((t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.BooleanLiteral | ts.TypeFlags.EnumLiteral)));
    const literal = members.find((t) => t.isStringLiteral() || t.isNumberLiteral());
    if (literal) return `a union of literals (${checker.typeToString(type)})`;
    for (const member of members) {
      const problem = problemOf(member);
      if (problem) return problem;
    }
    return undefined;
  }
  if (checker.isTupleType(type)) return `a tuple (${checker.typeToString(type)})`;
  if (checker.isArrayType(type)) {
    if (type.getSymbol()?.name === 'ReadonlyArray') return `a readonly array (${checker.typeToString(type)})`;
    return problemOf(checker.getTypeArguments(type as ts.TypeReference)[0]);
  }
  if (type.flags & ts.TypeFlags.Object) {
    const objectFlags = (type as ts.ObjectType).objectFlags;
    // Object literal types and mapped types (Record, Partial, ...); named interfaces and classes are fine.
    if (objectFlags & (ts.ObjectFlags.Anonymous | ts.ObjectFlags.Mapped) && type.getCallSignatures().length === 0) {
      const stringMap = type.getProperties().length === 0 && checker.getIndexInfoOfType(type, ts.IndexKind.String);
      if (!stringMap) return `an object type without a name (${checker.typeToString(type)})`;
      return problemOf(stringMap.type);
    }
  }
  return undefined;
}

describe('the public props', () => {
  it('are found: every Props and Options interface index.ts exports', () => {
    expect(propsInterfaces.map((p) => p.name).sort()).toEqual([
      'SessionCleanupProps',
      'WebrunBatchOptions',
      'WebrunBatchProps',
      'WebrunObservabilityOptions',
      'WebrunObservabilityProps',
      'WebrunStackProps',
      'WebrunTriggersProps',
      'WebrunWorkflowProps',
    ]);
  });

  it('hold no string-literal union, tuple, readonly array or unnamed object type, but for the documented exceptions', () => {
    const problems: string[] = [];
    for (const { name, type, declaration } of propsInterfaces) {
      for (const property of type.getProperties()) {
        const problem = problemOf(checker.getTypeOfSymbolAtLocation(property, declaration));
        if (problem && !KNOWN_EXCEPTIONS.has(`${name}.${property.name}`)) problems.push(`${name}.${property.name}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('are checked: the check finds a string-literal union, a Partial<Record> and a readonly array', () => {
    const source = `
      export interface BadProps {
        readonly level?: 'DEBUG' | 'INFO';
        readonly limits?: Partial<Record<'a' | 'b', number>>;
        readonly names?: readonly string[];
        readonly pair?: [string, number];
        readonly env?: { [name: string]: string };
        readonly flag?: boolean;
      }`;
    const file = path.join(ROOT, '__bad_props__.ts');
    const host = ts.createCompilerHost({ strict: true });
    const read = host.readFile;
    host.readFile = (f) => (f === file ? source : read(f));
    host.getSourceFile = ((orig) => (f: string, v: ts.ScriptTarget) => (f === file ? ts.createSourceFile(f, source, v) : orig(f, v)))(host.getSourceFile.bind(host));
    host.fileExists = ((orig) => (f: string) => f === file || orig(f))(host.fileExists.bind(host));
    const program = ts.createProgram([file], { strict: true, noEmit: true }, host);
    const saved = checker;
    checker = program.getTypeChecker();
    try {
      const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!)[0];
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      const found = Object.fromEntries(type.getProperties().map((p) => [p.name, problemOf(checker.getTypeOfSymbolAtLocation(p, symbol.declarations![0]))?.split(' (')[0]]));
      expect(found).toEqual({
        level: 'a union of literals',
        limits: 'an object type without a name',
        names: 'a readonly array',
        pair: 'a tuple',
        env: undefined,
        flag: undefined,
      });
    } finally {
      checker = saved;
    }
  });
});
