/** The dataTemplate subset: every construct docs/connectors.md promises. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileTemplate } from '../../src/connectors/index.js';

const render = (src: string, data: unknown) => compileTemplate(src).render(data);

describe('dataTemplate', () => {
  it('prints fields, nested fields, the whole value and missing fields', () => {
    const row = { a: 1, s: 'hi', o: { b: { c: true } }, n: null, big: 9007199254740993n };
    assert.equal(render('{{.a}}-{{.s}}-{{.o.b.c}}-{{.missing}}-{{.n}}-{{.big}}', row), '1-hi-true---9007199254740993');
    assert.equal(render('{{.}}', row), '{"a":1,"s":"hi","o":{"b":{"c":true}},"n":null,"big":9007199254740993}');
    assert.equal(render('{{.o}}', row), '{"b":{"c":true}}');
  });

  it('json, pipelines and helper functions', () => {
    const row = { s: 'a"b', arr: [1, 2, 3], t: 31.5 };
    assert.equal(render('{"s": {{json .s}}}', row), '{"s": "a\\"b"}');
    assert.equal(render('{{.arr | json}} {{len .arr}} {{index .arr 1}}', row), '[1,2,3] 3 2');
    assert.equal(render('{{if gt .t 30}}hot{{else}}ok{{end}}', row), 'hot');
    assert.equal(render('{{if and (eq .s "x") true}}y{{else if lt .t 40}}warm{{else}}n{{end}}', row), 'warm');
    assert.equal(render('{{printf "%s=%d" "t" .t}}', row), 't=31');
    assert.equal(render('{{base64 .s}}', row), Buffer.from('a"b').toString('base64'));
  });

  it('range over a batch, with index and element variables, else and trim markers', () => {
    const rows = [{ id: 1 }, { id: 2 }, { id: 3 }];
    assert.equal(render('{{range .}}{{.id}},{{end}}', rows), '1,2,3,');
    assert.equal(render('[{{range $i, $r := .}}{{if $i}},{{end}}{{$r.id}}{{end}}]', rows), '[1,2,3]');
    assert.equal(render('{{range .}}x{{else}}empty{{end}}', []), 'empty');
    assert.equal(render('a  {{- range . -}}  {{.id}}  {{- end}}  b', rows), 'a123  b');
    assert.equal(render('{{range $r := .}}{{$.x}}{{$r}}{{end}}', Object.assign([1, 2], { x: 'k' })), 'k1k2');
  });

  it('rejects syntax errors at compile time with E_CONNECTOR_CONFIG', () => {
    for (const bad of ['{{.a', '{{if .a}}x', '{{end}}', '{{foo .a}}', '{{range $i, $j, $k := .}}{{end}}', '{{.a..b}}'])
      assert.throws(() => compileTemplate(bad), { code: 'E_CONNECTOR_CONFIG' }, bad);
  });

  it('reports render errors with E_SINK_FAILED', () => {
    assert.throws(() => render('{{$nope}}', {}), { code: 'E_SINK_FAILED' });
    assert.throws(() => render('{{gt .a "x"}}', { a: 1 }), { code: 'E_SINK_FAILED' });
  });
});
