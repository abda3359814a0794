/**
 * A batch's items: read from a JSON array, JSON Lines or CSV with a header row (each item is one run's `vars`),
 * each with the line of the file it starts on, and checked against the template before anything starts: the
 * template with every item's vars merged in must be a valid workflow input, or the item is refused by its line.
 *
 * Used by the local batch (`npm start -- --batch`) and by `webrun-sfn batch start` before it uploads anything.
 */
import { extname } from 'node:path';
import { BATCH_LIMITS, type ItemFormat } from '../lambdas/shared/batch-contract';
import { isWebrunError } from '../lambdas/shared/errors';
import { validateWorkflowInput } from '../lambdas/shared/input';
import { describe, isPlainObject } from '../lambdas/shared/schema/core';
import { varNameProblem } from '../lambdas/shared/vars';

export type { ItemFormat };

/** One item: its place among the items (0-based), the line of the file it starts on (1-based), its vars. */
export interface BatchItem {
  readonly index: number;
  readonly line: number;
  readonly vars: Record<string, unknown>;
}

/** What is wrong with an items file or an item: where (a 1-based line, when known) and what. */
export interface ItemProblem {
  readonly line?: number;
  readonly message: string;
}

/** An items file that cannot be used; `problems` says where and why (at least one). */
export class ItemsError extends Error {
  override readonly name = 'ItemsError';
  constructor(readonly source: string, readonly problems: readonly [ItemProblem, ...ItemProblem[]], readonly total?: number) {
    const shown = problems.slice(0, 20).map((p) => `${source}${p.line === undefined ? '' : ` line ${p.line}`}: ${p.message}`);
    if (problems.length > 20) shown.push(`${source}: and ${problems.length - 20} more`);
    super(shown.join('\n'));
  }
}

const EXTENSIONS: Record<string, ItemFormat> = { '.json': 'json', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.csv': 'csv' };

/** The format of an items file: by its extension (.json, .jsonl/.ndjson, .csv), else by its first character. */
export function itemFormat(file: string, text: string): ItemFormat {
  const byName = EXTENSIONS[extname(file).toLowerCase()];
  if (byName) return byName;
  const first = stripBom(text).trimStart()[0];
  return first === '[' ? 'json' : first === '{' ? 'jsonl' : 'csv';
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  return linesAt(text, [offset])[0];
}

/** The line of each offset (in ascending order), in one pass over the text: 10,000 items are not 10,000 passes. */
function linesAt(text: string, offsets: readonly number[]): number[] {
  const lines: number[] = [];
  let line = 1;
  let i = 0;
  for (const offset of offsets) {
    for (; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
    lines.push(line);
  }
  return lines;
}

/**
 * Calls `visit` with each character of JSON `text` that is outside strings and whitespace (a string's opening quote
 * included), and its offset, until `visit` returns true. Linear, no recursion.
 */
function scanStructure(text: string, visit: (c: string, offset: number) => boolean | void): void {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    if (c === '"') inString = true;
    if (visit(c, i)) return;
  }
}

/** The offsets where the elements of a top-level JSON array start (the text is valid JSON). */
function elementOffsets(text: string): number[] {
  const offsets: number[] = [];
  let depth = 0;
  let expectValue = false;
  scanStructure(text, (c, i) => {
    if (depth === 1 && expectValue && c !== ']') {
      offsets.push(i);
      expectValue = false;
    }
    if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectValue = true;
  });
  return offsets;
}

/**
 * A JSON.parse error as a problem: its message without the offset it names (Node's "in JSON at position N" and
 * "after JSON at position N", an offset into what was parsed, which a reader cannot find), and the line of that
 * offset in `file`, where the parsed text starts at `start`. `afterValue` says what text after a complete value
 * means where it was parsed (Node says only "Unexpected non-whitespace character after JSON").
 */
function jsonProblem(err: unknown, file: string, start = 0, afterValue?: string): ItemProblem {
  const message = (err as Error).message;
  const position = /at position (\d+)/.exec(message)?.[1];
  const line = position === undefined ? undefined : lineAt(file, start + Number(position));
  const what = afterValue !== undefined && /after JSON/.test(message) ? afterValue : message.replace(/ (in JSON )?at position \d+.*$/s, '').slice(0, 200);
  return { line, message: `is not valid JSON: ${what}` };
}

/** Where `text` (JSON) has a comma just before a `]` or `}`, outside strings: the comma's offset and the bracket. */
function trailingComma(text: string): { offset: number; closer: string } | undefined {
  let comma: number | undefined;
  let found: { offset: number; closer: string } | undefined;
  scanStructure(text, (c, i) => {
    if ((c === ']' || c === '}') && comma !== undefined) {
      found = { offset: comma, closer: c };
      return true;
    }
    comma = c === ',' ? i : undefined;
    return false;
  });
  return found;
}

/** The problem of a comma before `closer` at `offset` in `file`: JSON.parse names it only as some token it did not expect. */
function trailingCommaProblem(file: string, offset: number, closer: string): ItemProblem {
  const last = closer === ']' ? 'item' : 'field';
  return { line: lineAt(file, offset), message: `is not valid JSON: a comma before "${closer}" (JSON allows no comma after the last ${last}: remove it)` };
}

function itemObject(value: unknown, line: number, index: number, problems: ItemProblem[], items: BatchItem[]): void {
  if (!isPlainObject(value)) {
    problems.push({ line, message: `item ${index + 1} must be a JSON object of variables, got ${describe(value)}` });
    return;
  }
  items.push({ index, line, vars: value });
}

/**
 * In a JSON array that does not parse, the first element that does not parse on its own, by the line it starts on
 * (JSON.parse names no position for most of its errors), or the trailing comma before the array's `]`.
 */
function brokenElement(text: string): ItemProblem | undefined {
  if (!text.trimStart().startsWith('[')) return undefined;
  const offsets = elementOffsets(text);
  for (let i = 0; i < offsets.length; i++) {
    const last = i === offsets.length - 1;
    let slice = text.slice(offsets[i], offsets[i + 1] ?? text.length).trimEnd();
    // What ends the element: the comma before the next one, or the array's "]" (and a comma before it is an error).
    slice = last ? slice.replace(/\]$/, '').trimEnd() : slice.replace(/,$/, '');
    if (last && slice.endsWith(',')) return trailingCommaProblem(text, offsets[i] + slice.length - 1, ']');
    try {
      JSON.parse(slice);
    } catch (err) {
      const comma = trailingComma(slice);
      if (comma) return trailingCommaProblem(text, offsets[i] + comma.offset, comma.closer);
      // Two items without a comma between them are one element here, the second "after JSON", on its own line.
      if (/after JSON/.test((err as Error).message)) return jsonProblem(err, text, offsets[i], 'an item is followed by another without a comma between them');
      return { ...jsonProblem(err, text, offsets[i]), line: lineAt(text, offsets[i]) };
    }
  }
  return undefined;
}

function parseJsonArray(text: string, problems: ItemProblem[]): BatchItem[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // Text after the array (a second array, a stray bracket): JSON.parse names where; the elements are all fine.
    const after = /after JSON at position \d+/.test((err as Error).message);
    problems.push((after ? undefined : brokenElement(text)) ?? jsonProblem(err, text, 0, `there is more text after the ${text.trimStart().startsWith('[') ? 'array\'s closing "]"' : 'first JSON value'}`));
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push({ line: 1, message: `must be a JSON array of items, got ${describe(parsed)}` });
    return [];
  }
  const lines = linesAt(text, elementOffsets(text));
  const items: BatchItem[] = [];
  parsed.forEach((value, i) => itemObject(value, lines[i] ?? 1, i, problems, items));
  return items;
}

function parseJsonLines(text: string, problems: ItemProblem[]): BatchItem[] {
  const lines = text.split('\n');
  // A final newline ends the last line; it does not start an empty one.
  if (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const items: BatchItem[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    const body = raw.replace(/\r$/, '');
    if (body.trim() === '') {
      problems.push({ line, message: 'is blank: JSON Lines holds one JSON object on every line' });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (err) {
      const comma = trailingComma(body);
      problems.push({ ...(comma ? trailingCommaProblem(body, comma.offset, comma.closer) : jsonProblem(err, body, 0, 'the line holds more than one JSON value')), line });
      return;
    }
    itemObject(value, line, i, problems, items);
  });
  return items;
}

/** RFC 4180 records with the line each starts on: comma-separated, "quoted" fields ("" for a quote, may span lines). */
function csvRecords(text: string, problems: ItemProblem[]): Array<{ line: number; fields: string[]; blank: boolean }> {
  const records: Array<{ line: number; fields: string[]; blank: boolean }> = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    let quoted = false;
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        quoted = true;
        const opened = line;
        i++;
        for (;;) {
          if (i >= text.length) {
            problems.push({ line: opened, message: 'has a quoted field that is never closed' });
            return records;
          }
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < text.length && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          problems.push({ line, message: 'has text after a closing quote (quote the whole field, and double the quotes inside it)' });
          return records;
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          if (text[i] === '"') {
            problems.push({ line, message: 'has a quote inside an unquoted field (quote the whole field, and double the quotes inside it)' });
            return records;
          }
          field += text[i];
          i++;
        }
      }
      fields.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      break;
    }
    // An empty line, not a row whose one field is "" (an empty value is written that way).
    records.push({ line: start, fields, blank: !quoted && fields.length === 1 && fields[0].trim() === '' });
    if (text[i] === '\r') i++;
    if (text[i] === '\n') {
      i++;
      line++;
    }
  }
  return records;
}

function parseCsv(text: string, problems: ItemProblem[]): BatchItem[] {
  const records = csvRecords(text, problems);
  if (problems.length > 0) return [];
  const [header, ...rows] = records;
  if (!header) {
    problems.push({ line: 1, message: 'is empty: a CSV batch needs a header row naming the variables' });
    return [];
  }
  const seen = new Set<string>();
  header.fields.forEach((name, i) => {
    // Named once here, not on every row that would carry the column into its vars.
    const column = `column ${i + 1} of the header row`;
    const problem = varNameProblem(name);
    if (name.trim() === '') problems.push({ line: header.line, message: `${column} has no name` });
    else if (problem && varNameProblem(name.trim()) === undefined) {
      problems.push({ line: header.line, message: `${column}, ${JSON.stringify(name)}, has spaces around the name (write ${JSON.stringify(name.trim())})` });
    } else if (problem) problems.push({ line: header.line, message: `${column}, ${JSON.stringify(name)}, ${problem}` });
    else if (seen.has(name)) problems.push({ line: header.line, message: `the header row names ${JSON.stringify(name)} twice` });
    seen.add(name);
  });
  if (problems.length > 0) return [];
  const items: BatchItem[] = [];
  rows.forEach((row, i) => {
    if (row.blank) {
      problems.push({ line: row.line, message: 'is blank: every row of a CSV batch is one item (write "" for an empty value)' });
      return;
    }
    if (row.fields.length !== header.fields.length) {
      problems.push({ line: row.line, message: `has ${row.fields.length} field(s), the header row has ${header.fields.length}` });
      return;
    }
    items.push({ index: i, line: row.line, vars: Object.fromEntries(header.fields.map((name, j) => [name, row.fields[j]])) });
  });
  return items;
}

/**
 * The text with line breaks as LF or CRLF: a file whose lines end with CR alone (as classic Mac OS and some
 * spreadsheet exports write them) would otherwise be one line, a CSV of a header and nothing else.
 */
function lineBreaks(text: string): string {
  return text.includes('\r') && !text.includes('\n') ? text.replace(/\r/g, '\n') : text;
}

/** Reads the items of a file's text; throws ItemsError naming each bad line. */
export function parseItems(text: string, format: ItemFormat, source: string): BatchItem[] {
  const body = lineBreaks(stripBom(text));
  const problems: ItemProblem[] = [];
  const items = format === 'json' ? parseJsonArray(body, problems) : format === 'jsonl' ? parseJsonLines(body, problems) : parseCsv(body, problems);
  const [first, ...rest] = problems;
  if (first) throw new ItemsError(source, [first, ...rest]);
  if (items.length === 0) throw new ItemsError(source, [{ message: 'holds no items' }]);
  if (items.length > BATCH_LIMITS.maxItems) throw new ItemsError(source, [{ message: `holds ${items.length} items; a batch holds at most ${BATCH_LIMITS.maxItems}` }]);
  return items;
}

/** The workflow input of one item: the template with the item's fields merged over its `vars` (as the deployed map does). */
export function itemInput(template: Record<string, unknown>, vars: Record<string, unknown>): Record<string, unknown> {
  const defaults = isPlainObject(template.vars) ? template.vars : {};
  return { ...template, vars: { ...defaults, ...vars } };
}

/**
 * Why the deployed batch state machine could not run `template`, or undefined: vars that are not an object, or a
 * size past BATCH_LIMITS.maxTemplateBytes, at which its "Prepare batch" state would pass Step Functions' 256 KiB
 * (States.DataLimitExceeded, which no Catch handles).
 */
export function templateProblem(template: Record<string, unknown>): string | undefined {
  // The batch state machine merges each item over the template's vars (States.JsonMerge): anything but an object
  // there fails every item, after the batch has started.
  if (template.vars !== undefined && !isPlainObject(template.vars)) return `vars: must be an object of variables by name, got ${describe(template.vars)}`;
  const size = Buffer.byteLength(JSON.stringify(template), 'utf8');
  if (size <= BATCH_LIMITS.maxTemplateBytes) return undefined;
  return `the template has ${size} bytes; a batch template may have at most ${BATCH_LIMITS.maxTemplateBytes} (the batch state machine holds it twice in one state, and Step Functions allows 256 KiB there)`;
}

/**
 * Checks the template with every item's vars, as each run's start step would: throws ItemsError listing every
 * refused item by line (with the field and the reason), so that nothing starts unless every item can.
 */
export function checkItems(template: Record<string, unknown>, items: readonly BatchItem[], source: string): void {
  const problems: ItemProblem[] = [];
  for (const item of items) {
    try {
      validateWorkflowInput(itemInput(template, item.vars));
    } catch (err) {
      if (!isWebrunError(err)) throw err;
      problems.push({ line: item.line, message: err.message });
    }
  }
  const [first, ...rest] = problems;
  if (first) throw new ItemsError(source, [first, ...rest], items.length);
}
