/** The JSON error locator agrees with JSON.parse on what is valid, and points at the first bad character. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { locateJsonError, parseJsonBody } from '../../src/rules/json-body.js';

it('agrees with JSON.parse and gives the offset of the first error', () => {
  const valid = ['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]} ', '"s"', '0', '{"a":{"b":[{}]}}'];
  for (const t of valid) assert.equal(locateJsonError(t), undefined, t);
  const invalid: [string, number][] = [
    ['{"a": }', 6],
    ['{"a" 1}', 5],
    ['{a: 1}', 1],
    ['[1, 2', 5],
    ['[1 2]', 3],
    ['{"a": 01}', 7],
    ['{"a": "b\\x"}', 9],
    ['{"a": tru}', 6],
    ['{} x', 3],
    ['{"a": 1,}', 8],
  ];
  for (const [t, offset] of invalid) {
    assert.throws(() => JSON.parse(t), SyntaxError, t);
    assert.equal(locateJsonError(t)?.offset, offset, t);
  }
  assert.throws(() => parseJsonBody('{\n  "id": 1,\n  "sql" "x"\n}'), /expected ':' after the property name but found "\\"x\\"\\n}" at line 3, column 9/);
  assert.equal(parseJsonBody('  '), undefined); // a bodiless DELETE/start/stop with content-type JSON is accepted, as eKuiper does
});
