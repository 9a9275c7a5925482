import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamCatalog, parseStreamDef } from '../../src/engine/index.js';

test('the catalog executes CREATE, SHOW, DESCRIBE and DROP STREAM', () => {
  const c = new StreamCatalog();
  const r = c.execute('CREATE STREAM demo (id bigint, loc struct(city string)) WITH (DATASOURCE="devices/+/data", CONF_KEY="local")');
  assert.equal(r.kind, 'created');
  assert.deepEqual(c.execute('SHOW STREAMS'), { kind: 'list', names: ['demo'] });
  const d = c.execute('DESCRIBE STREAM demo');
  assert.equal(d.kind, 'describe');
  if (d.kind !== 'describe') return;
  assert.deepEqual(d.stream.options, { TYPE: 'mqtt', FORMAT: 'json', DATASOURCE: 'devices/+/data', CONF_KEY: 'local' });
  assert.equal(d.stream.sql, 'CREATE STREAM demo (id bigint, loc struct(city string)) WITH (TYPE="mqtt", FORMAT="json", DATASOURCE="devices/+/data", CONF_KEY="local")');
  // the normalised DDL round-trips
  assert.deepEqual(parseStreamDef(d.stream.sql), d.stream);
  assert.throws(() => c.execute('CREATE STREAM demo () WITH (DATASOURCE="x")'), (e: any) => e.code === 'E_CONFLICT');
  assert.equal(c.execute('DROP STREAM demo').kind, 'dropped');
  assert.throws(() => c.execute('DROP STREAM demo'), (e: any) => e.code === 'E_NOT_FOUND');
  assert.throws(() => c.execute('DESCRIBE STREAM demo'), (e: any) => e.code === 'E_NOT_FOUND');
  assert.throws(() => parseStreamDef('CREATE STREAM s (a bigint, a string)'), (e: any) => e.code === 'E_SQL_SEMANTIC');
});
