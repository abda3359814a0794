/** A batch's items: JSON array, JSON Lines, CSV with a header; bad items refused by line before anything starts. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkItems, itemFormat, itemInput, ItemsError, parseItems, templateProblem } from '../../local/batch-items';

function refused(run: () => unknown): ItemsError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ItemsError);
    return err as ItemsError;
  }
  throw new Error('expected an ItemsError');
}

const TEMPLATE = { vars: { shop: 'https://shop.example.com' }, session: { startingPoint: '{{shop}}/p/{{sku}}' }, tasks: [{ taskDetails: 'Read the price of {{sku}}' }] };

describe('itemFormat', () => {
  it.each([
    ['items.json', 'x', 'json'],
    ['items.JSONL', 'x', 'jsonl'],
    ['items.ndjson', 'x', 'jsonl'],
    ['items.csv', '[', 'csv'],
    ['items.txt', '\uFEFF  [{"a":1}]', 'json'],
    ['-', '{"a":1}\n', 'jsonl'],
    ['items', 'sku,qty\n', 'csv'],
  ])('%s (%j) is %s', (file, text, format) => {
    expect(itemFormat(file, text)).toBe(format);
  });
});

describe('parseItems', () => {
  it('reads a JSON array, each item with the line it starts on', () => {
    const text = '[\n  {"sku": "a"},\n  {\n    "sku": "b, \\"quoted\\" [x]"\n  }, {"sku": "c"}\n]\n';
    expect(parseItems(text, 'json', 'items.json')).toEqual([
      { index: 0, line: 2, vars: { sku: 'a' } },
      { index: 1, line: 3, vars: { sku: 'b, "quoted" [x]' } },
      { index: 2, line: 5, vars: { sku: 'c' } },
    ]);
  });

  it('reads JSON Lines (CRLF too, a final newline or not)', () => {
    expect(parseItems('{"sku":"a"}\r\n{"sku":"b","n":2}', 'jsonl', 'x.jsonl')).toEqual([
      { index: 0, line: 1, vars: { sku: 'a' } },
      { index: 1, line: 2, vars: { sku: 'b', n: 2 } },
    ]);
  });

  it('reads CSV with a header row: quoted fields, doubled quotes, commas and newlines inside quotes, a BOM', () => {
    const text = '\uFEFFsku,note\r\na1,plain\r\n"b,2","say ""hi""\nover two lines"\r\nc3,\r\n';
    expect(parseItems(text, 'csv', 'items.csv')).toEqual([
      { index: 0, line: 2, vars: { sku: 'a1', note: 'plain' } },
      { index: 1, line: 3, vars: { sku: 'b,2', note: 'say "hi"\nover two lines' } },
      { index: 2, line: 5, vars: { sku: 'c3', note: '' } },
    ]);
  });

  it.each([
    ['json', '[{"sku":"a"},\n{"sku":"b"},\n"c"]', 3, /item 3 must be a JSON object of variables, got a string/],
    ['json', '[{"sku":"a"},\n{"sku": }]', 2, /is not valid JSON/],
    ['json', '{"sku":"a"}', 1, /must be a JSON array of items, got an object/],
    // Text after the array is named where it is, not at the first element.
    ['json', '[\n {"sku":"A"}\n]\n[{"sku":"B"}]', 4, /^is not valid JSON: there is more text after the array's closing "\]"$/],
    // Named for what it is, where it is: "line 3: ... Unexpected non-whitespace character after JSON at position 7"
    // named an offset into a piece of the file.
    ['json', '[\n{"a":1},\n{"a":2},\n]', 3, /^is not valid JSON: a comma before "\]" \(JSON allows no comma after the last item: remove it\)$/],
    ['json', '[\n{"a":1},\n{"a":[1,\n2,\n]},\n{"a":3}\n]', 4, /^is not valid JSON: a comma before "\]"/],
    ['json', '[\n{"a":"],"},\n{"a":1,\n}\n]', 3, /^is not valid JSON: a comma before "\}" \(JSON allows no comma after the last field: remove it\)$/],
    ['json', '[\n{"a":1}\n{"a":2}\n]', 3, /^is not valid JSON: an item is followed by another without a comma between them$/],
    ['json', '[\n{"a":1},\n{"a":2}\n', 4, /^is not valid JSON: Expected ',' or '\]' after array element$/],
    ['jsonl', '{"a":1}\n{"a":1,}\n', 2, /^is not valid JSON: a comma before "\}"/],
    ['jsonl', '{"a":1}\n{"a":1} {"a":2}\n', 2, /^is not valid JSON: the line holds more than one JSON value$/],
    ['jsonl', '{"sku":"a"}\n{"sku":\n{"sku":"c"}\n', 2, /is not valid JSON/],
    ['jsonl', '{"sku":"a"}\n\n{"sku":"c"}\n', 2, /is blank/],
    ['jsonl', '{"sku":"a"}\n[1]\n', 2, /must be a JSON object of variables, got an array/],
    ['csv', 'sku,qty\na,1\nb\nc,3\n', 3, /has 1 field\(s\), the header row has 2/],
    ['csv', 'sku,qty\na,1\n"b,2\n', 3, /quoted field that is never closed/],
    ['csv', 'sku,qty\na,1\nb"x,2\n', 3, /quote inside an unquoted field/],
    ['csv', 'sku,sku\na,1\n', 1, /names "sku" twice/],
    ['csv', 'sku,\na,1\n', 1, /column 2 of the header row has no name/],
    // A blank line in a one-column file would be an item whose value is empty: a billed session run on nothing.
    ['csv', 'sku\nA\n\nB\n', 3, /is blank: every row of a CSV batch is one item/],
    ['csv', 'sku\r\nA\r\n\r\n', 3, /is blank/],
    ['csv', 'sku\n\n', 2, /is blank/],
  ] as const)('refuses a bad %s file naming the line (%j)', (format, text, line, message) => {
    const err = refused(() => parseItems(text, format, 'items'));
    expect(err.problems[0]).toMatchObject({ line });
    expect(err.problems[0].message).toMatch(message);
    expect(err.message).toContain(`items line ${line}: `);
    expect(err.message).not.toMatch(/position/);
  });

  // A header that is not a variable name was reported on every data row ("line 2: vars["sku "]: ...", repeated).
  it.each([
    ['sku ,qty\nA,1\nB,2\nC,3\n', 'column 1 of the header row, "sku ", has spaces around the name (write "sku")'],
    ['sku,qty n\nA,1\nB,2\n', 'column 2 of the header row, "qty n", is not a variable name (letters, digits, _ . -, starting with a letter or _; at most 100 characters)'],
    ['sku,constructor\nA,1\nB,2\n', 'column 2 of the header row, "constructor", is a reserved name: __proto__, constructor and prototype cannot be variable names'],
  ])('names a header that is not a variable name once, at line 1 (%j)', (text, message) => {
    const err = refused(() => parseItems(text, 'csv', 'items.csv'));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0].line).toBe(1);
    expect(err.problems[0].message.startsWith(message)).toBe(true);
  });

  // Lines ending with CR alone made one line: "holds no items".
  it('reads a file whose lines end with CR alone, with the same lines', () => {
    expect(parseItems('sku,note\rA1,plain\r"B2","two\rlines"\rC3,x\r', 'csv', 'items.csv')).toEqual([
      { index: 0, line: 2, vars: { sku: 'A1', note: 'plain' } },
      { index: 1, line: 3, vars: { sku: 'B2', note: 'two\nlines' } },
      { index: 2, line: 5, vars: { sku: 'C3', note: 'x' } },
    ]);
    expect(parseItems('{"sku":"a"}\r{"sku":"b"}\r', 'jsonl', 'items.jsonl').map((i) => i.line)).toEqual([1, 2]);
  });

  it('property: a comma after the last item is named at its line, whatever the items hold (fixed seed)', () => {
    const item = fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 3 });
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 4 }), fc.constantFrom(0, 2), (items, indent) => {
        const text = JSON.stringify(items, null, indent);
        const broken = `${text.slice(0, -1).trimEnd()},\n]\n`;
        const err = refused(() => parseItems(broken, 'json', 'items.json'));
        expect(err.problems).toEqual([{ line: broken.split('\n').length - 2, message: 'is not valid JSON: a comma before "]" (JSON allows no comma after the last item: remove it)' }]);
      }),
      { seed: 5, numRuns: 200 },
    );
  });

  it('keeps an empty value written as "" in a one-column file', () => {
    expect(parseItems('sku\nA\n""\n', 'csv', 'items.csv').map((i) => i.vars)).toEqual([{ sku: 'A' }, { sku: '' }]);
  });

  it('refuses an empty batch and one of more than 10,000 items', () => {
    expect(refused(() => parseItems('[]', 'json', 'e.json')).message).toBe('e.json: holds no items');
    expect(refused(() => parseItems('sku\n', 'csv', 'e.csv')).message).toBe('e.csv: holds no items');
    const many = `sku\n${Array.from({ length: 10_001 }, (_, i) => `s${i}`).join('\n')}\n`;
    expect(parseItems(many.split('\n').slice(0, 10_001).join('\n'), 'csv', 'ok.csv')).toHaveLength(10_000);
    expect(refused(() => parseItems(many, 'csv', 'big.csv')).message).toBe('big.csv: holds 10001 items; a batch holds at most 10000');
  });
});

describe('checkItems and itemInput', () => {
  it('merges each item over the template\'s vars (the item wins), as the deployed map does', () => {
    expect(itemInput(TEMPLATE, { sku: 'x', shop: 'https://other.example.com' }).vars).toEqual({ sku: 'x', shop: 'https://other.example.com' });
    expect(itemInput({ tasks: [] }, { sku: 'x' })).toEqual({ tasks: [], vars: { sku: 'x' } });
  });

  it.each([[null], ['x'], [[]], [3]])('refuses a template whose vars are %j before any item: the map merges each item over them', (vars) => {
    expect(templateProblem({ vars, tasks: [{ taskDetails: 'Check {{sku}}' }] })).toMatch(/^vars: must be an object of variables by name, got /);
    expect(templateProblem({ vars: { shop: 'x' }, tasks: [{ taskDetails: 'Check {{sku}}' }] })).toBeUndefined();
  });

  it('refuses an item whose number JSON cannot carry (1e400 parses as Infinity, and reaches Step Functions as null)', () => {
    const items = parseItems('[{"sku":"A1","qty":1e400}]', 'json', 'items.json');
    expect(refused(() => checkItems({ tasks: [{ taskDetails: 'Buy {{qty}} of {{sku}}' }] }, items, 'items.json')).problems).toEqual([
      { line: 1, message: 'vars.qty: must be a finite number, got Infinity' },
    ]);
  });

  it('refuses an item whose numeric id would be filled in with other digits, asking for it in quotes', () => {
    const items = parseItems('[\n{"id":42},\n{"id":1234567890123456789},\n{"id":"1234567890123456789"}\n]', 'json', 'items.json');
    const err = refused(() => checkItems({ tasks: [{ taskDetails: 'Open order {{id}}' }] }, items, 'items.json'));
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatchObject({ line: 3 });
    expect(err.problems[0].message).toMatch(/^vars\.id: must be in quotes: as a number it would be filled in as 1234567890123456800 /);
  });

  it('accepts items that fill every placeholder', () => {
    const items = parseItems('sku\nA1\nB2\n', 'csv', 'items.csv');
    expect(() => checkItems(TEMPLATE, items, 'items.csv')).not.toThrow();
  });

  it('refuses every bad item by its line, with the field and the reason', () => {
    const items = parseItems('[\n{"sku":"A1"},\n{"sku":"B2","shop":"not a url"},\n{"other":"x"}\n]', 'json', 'items.json');
    const err = refused(() => checkItems(TEMPLATE, items, 'items.json'));
    expect(err.problems).toEqual([
      { line: 3, message: 'session.startingPoint: is not a valid URL: "not a url/p/B2"' },
      { line: 4, message: 'session.startingPoint: has an unknown placeholder {{sku}} (vars has shop, other)' },
    ]);
    expect(err.message.split('\n')[0]).toBe('items.json line 3: session.startingPoint: is not a valid URL: "not a url/p/B2"');
  });
});
