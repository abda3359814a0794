/**
 * The repository's types, read through TypeScript 7's program service (typescript/unstable/sync, pinned with the
 * compiler), which loads each project once for both checks:
 * - the whole repository type-checks (tsconfig.json: sources, tests, scripts): what `tsc --noEmit` reports, found
 *   here while the other test files run rather than in a step before them;
 * - the props of the package's constructs stay within what jsii (the compiler behind CDK's Python, Java, C# and Go
 *   packages) can express, so a jsii build stays a packaging step rather than an API change: no string-literal
 *   unions, no tuples, no readonly arrays, no object types other than named interfaces and string-keyed maps. The
 *   exceptions are listed with the README's "Before a jsii build" section, which says what remains.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { API, ObjectFlags, SignatureKind, SymbolFlags, TypeFlags, type Checker, type Diagnostic, type Project, type Type } from 'typescript/unstable/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');

/** Props the README lists as what remains before a jsii build (valibot-inferred config types in readonly arrays). */
const KNOWN_EXCEPTIONS = new Set(['WebrunStackProps.schedules', 'WebrunStackProps.triggers', 'WebrunTriggersProps.schedules', 'WebrunTriggersProps.triggers']);

/** A control: each property but the last two is something jsii refuses. */
const BAD_PROPS = `
  export interface BadProps {
    readonly level?: 'DEBUG' | 'INFO';
    readonly limits?: Partial<Record<'a' | 'b', number>>;
    readonly names?: readonly string[];
    readonly pair?: [string, number];
    readonly env?: { [name: string]: string };
    readonly flag?: boolean;
  }`;

/** A control for the type check: one type error. */
const TYPE_ERROR = `export const port: number = '8080';\n`;

interface PropsInterface { name: string; properties: Array<{ name: string; type: Type }> }

let api: API;
let controlDir: string;
let published: { checker: Checker; props: PropsInterface[] };
let control: { checker: Checker; props: PropsInterface[] };
let repository: Project;
let controlProject: Project;

/** Every interface named *Props or *Options that `entry` exports, with the type of each of its properties. */
function propsOf(project: Project, entry: string): PropsInterface[] {
  const { checker, program } = project;
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return checker.getExportsOfModule(moduleSymbol)
    .map((s) => (s.flags & SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s))
    .filter((s) => s.flags & SymbolFlags.Interface && /(Props|Options)$/.test(s.name))
    .map((s) => {
      const declaration = s.declarations[0].resolve(project)!;
      const properties = checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(s));
      return { name: s.name, properties: properties.map((p) => ({ name: p.name, type: checker.getTypeOfSymbolAtLocation(p, declaration) })) };
    });
}

beforeAll(() => {
  controlDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webrun-props-'));
  fs.writeFileSync(path.join(controlDir, 'bad.ts'), BAD_PROPS);
  fs.writeFileSync(path.join(controlDir, 'type-error.ts'), TYPE_ERROR);
  fs.writeFileSync(path.join(controlDir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, types: [], target: 'ES2022', lib: ['ES2023'] }, files: ['bad.ts', 'type-error.ts'] }));
  const configs = { repository: path.join(ROOT, 'tsconfig.json'), published: path.join(ROOT, 'tsconfig.build.json'), control: path.join(controlDir, 'tsconfig.json') };
  api = new API({ cwd: ROOT });
  const snapshot = api.updateSnapshot({ openProjects: Object.values(configs) });
  repository = snapshot.getProject(configs.repository)!;
  controlProject = snapshot.getProject(configs.control)!;
  const open = (config: string, entry: string) => {
    const project = snapshot.getProject(config)!;
    return { checker: project.checker, props: propsOf(project, entry) };
  };
  published = open(configs.published, path.join(ROOT, 'index.ts'));
  control = open(configs.control, path.join(controlDir, 'bad.ts'));
}, 60_000);

afterAll(() => {
  api?.close();
  if (controlDir) fs.rmSync(controlDir, { recursive: true, force: true });
});

/** Why jsii could not express `type`, or undefined when it can. */
function problemOf(checker: Checker, type: Type): string | undefined {
  if (type.isUnionType()) {
    const members = type.getTypes().filter((t) => !(t.flags & (TypeFlags.Undefined | TypeFlags.BooleanLiteral | TypeFlags.EnumLiteral)));
    const literal = members.find((t) => t.isStringLiteralType() || t.isNumberLiteralType());
    if (literal) return `a union of literals (${checker.typeToString(type)})`;
    for (const member of members) {
      const problem = problemOf(checker, member);
      if (problem) return problem;
    }
    return undefined;
  }
  if (checker.isTupleType(type)) return `a tuple (${checker.typeToString(type)})`;
  if (checker.isArrayType(type)) {
    if (type.getSymbol()?.name === 'ReadonlyArray') return `a readonly array (${checker.typeToString(type)})`;
    return type.isTypeReference() ? problemOf(checker, checker.getTypeArguments(type)[0]) : undefined;
  }
  if (type.isObjectType() && type.objectFlags & (ObjectFlags.Anonymous | ObjectFlags.Mapped) && checker.getSignaturesOfType(type, SignatureKind.Call).length === 0) {
    // Object literal types and mapped types (Record, Partial, ...); named interfaces and classes are fine.
    const stringMap = checker.getPropertiesOfType(type).length === 0 && checker.getIndexInfosOfType(type).find((info) => info.keyType.flags & TypeFlags.String);
    if (!stringMap) return `an object type without a name (${checker.typeToString(type)})`;
    return problemOf(checker, stringMap.valueType);
  }
  return undefined;
}

/** Every diagnostic `tsc --noEmit` could report for the project, as "file(line): TS<code> text". */
function diagnosticsOf(project: Project): string[] {
  const { program } = project;
  const all: Diagnostic[] = [
    ...program.getConfigFileParsingDiagnostics(),
    ...program.getProgramDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program.getSyntacticDiagnostics(),
    ...program.getSemanticDiagnostics(),
  ];
  return all.map((d) => {
    const file = d.fileName ? path.relative(ROOT, d.fileName) : '(options)';
    const line = d.fileName ? fs.readFileSync(d.fileName, 'utf8').slice(0, d.pos).split('\n').length : 0;
    return `${file}(${line}): TS${d.code} ${d.text}`;
  });
}

describe('the repository type-checks', () => {
  it('with no diagnostic in any file of tsconfig.json: sources, tests and scripts', () => {
    expect(diagnosticsOf(repository)).toEqual([]);
  });

  it('is checked: the control\'s type error is reported, with its file, line and code', () => {
    const reported = diagnosticsOf(controlProject).map((d) => d.replace(path.relative(ROOT, controlDir), '<control>'));
    expect(reported).toEqual(["<control>/type-error.ts(1): TS2322 Type 'string' is not assignable to type 'number'."]);
  });
});

describe('the public props', () => {
  it('are found: every Props and Options interface index.ts exports', () => {
    expect(published.props.map((p) => p.name).sort()).toEqual([
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
    const excepted: string[] = [];
    for (const { name, properties } of published.props) {
      for (const property of properties) {
        const problem = problemOf(published.checker, property.type);
        if (!problem) continue;
        if (KNOWN_EXCEPTIONS.has(`${name}.${property.name}`)) excepted.push(`${name}.${property.name}`);
        else problems.push(`${name}.${property.name}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
    // Each exception is still one: once jsii could take it, it leaves the list (and the README's).
    expect(excepted.sort()).toEqual([...KNOWN_EXCEPTIONS].sort());
  });

  it('are checked: the check finds a string-literal union, a Partial<Record>, a readonly array and a tuple', () => {
    const [bad] = control.props;
    const found = Object.fromEntries(bad.properties.map((p) => [p.name, problemOf(control.checker, p.type)?.split(' (')[0]]));
    expect(found).toEqual({
      level: 'a union of literals',
      limits: 'an object type without a name',
      names: 'a readonly array',
      pair: 'a tuple',
      env: undefined,
      flag: undefined,
    });
  });
});
