/**
 * The common sink properties, implemented once in SinkRunner: sendSingle, omitIfEmpty,
 * bufferLength (back-pressure), retryCount/retryInterval and the counters.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SinkRunner, readSinkCommon, type Row, type SinkConnector } from '../../src/connectors/index.js';

/** A sink that records what it gets, can be held shut, and fails its first `failures` calls. */
class RecordingSink implements SinkConnector {
  readonly batches: Row[][] = [];
  calls = 0;
  private gate?: Promise<void>;
  private release?: () => void;
  constructor(private failures = 0) {}
  hold(): void {
    this.gate = new Promise((r) => (this.release = r));
  }
  unblock(): void {
    this.release?.();
    this.gate = undefined;
  }
  async open(): Promise<void> {}
  async collect(rows: Row[]): Promise<void> {
    this.calls++;
    await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`refused call ${this.calls}`);
    }
    this.batches.push(rows);
  }
  async close(): Promise<void> {}
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('SinkRunner', () => {
  it('sends one message per batch by default and one per row with sendSingle', async () => {
    const batchSink = new RecordingSink();
    const batch = new SinkRunner(batchSink, {});
    await batch.open();
    await batch.collect([{ a: 1 }, { a: 2 }]);
    await batch.collect([]);
    await batch.close();
    assert.deepEqual(batchSink.batches, [[{ a: 1 }, { a: 2 }], []]);

    const singleSink = new RecordingSink();
    const single = new SinkRunner(singleSink, { sendSingle: true });
    await single.open();
    await single.collect([{ a: 1 }, { a: 2 }]);
    await single.close();
    assert.deepEqual(singleSink.batches, [[{ a: 1 }], [{ a: 2 }]]);
    const m = single.metrics();
    assert.deepEqual([m.recordsIn, m.recordsOut, m.messagesOut, m.exceptions], [2, 2, 2, 0]);
  });

  it('omitIfEmpty drops empty batches, and empty rows when sending single', async () => {
    const s1 = new RecordingSink();
    const r1 = new SinkRunner(s1, { omitIfEmpty: true });
    await r1.open();
    await r1.collect([]);
    await r1.collect([{ a: 1 }]);
    await r1.close();
    assert.deepEqual(s1.batches, [[{ a: 1 }]]);

    const s2 = new RecordingSink();
    const r2 = new SinkRunner(s2, { omitIfEmpty: 'true', sendSingle: true });
    await r2.open();
    await r2.collect([{}, { b: 2 }, {}]);
    await r2.close();
    assert.deepEqual(s2.batches, [[{ b: 2 }]]);
  });

  it('bufferLength: collect waits while that many messages are already waiting', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const r = new SinkRunner(sink, { sendSingle: true, bufferLength: 2 });
    await r.open();
    // Row 1 goes in flight (held); rows 2 and 3 fill the buffer; row 4 must wait.
    let done = false;
    const p = r.collect([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]).then(() => (done = true));
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(done, false);
    assert.equal(r.metrics().buffered, 2);
    assert.equal(sink.calls, 1);
    sink.unblock();
    await p;
    await r.drain();
    assert.deepEqual(sink.batches, [[{ n: 1 }], [{ n: 2 }], [{ n: 3 }], [{ n: 4 }]]);
    await r.close();
  });

  it('retries a failed message retryCount times, then drops and counts it', async () => {
    const flaky = new RecordingSink(2);
    const r = new SinkRunner(flaky, { retryCount: 2, retryInterval: 1 });
    await r.open();
    await r.collect([{ a: 1 }]);
    await r.drain();
    assert.deepEqual(flaky.batches, [[{ a: 1 }]]);
    assert.equal(flaky.calls, 3);
    let m = r.metrics();
    assert.deepEqual([m.exceptions, m.recordsOut, m.droppedMessages], [2, 1, 0]);

    const dead = new RecordingSink(100);
    const r2 = new SinkRunner(dead, { retryCount: 1, retryInterval: 1, sendSingle: true });
    await r2.open();
    await r2.collect([{ a: 1 }, { a: 2 }]);
    await r2.drain();
    m = r2.metrics();
    assert.equal(dead.calls, 4);
    assert.deepEqual([m.exceptions, m.recordsOut, m.droppedMessages, m.droppedRecords], [4, 0, 2, 2]);
    assert.equal(m.lastError, 'refused call 4');
    assert.equal(typeof m.lastErrorAt, 'number');
    await r2.close();
  });

  it('close() abandons a pending retry wait instead of blocking', async () => {
    const dead = new RecordingSink(100);
    const r = new SinkRunner(dead, { retryCount: 5, retryInterval: 3_600_000 });
    await r.open();
    await r.collect([{ a: 1 }]);
    while (dead.calls === 0) await settle();
    await r.close();
    assert.equal(r.metrics().droppedMessages, 1);
    await assert.rejects(r.collect([{ a: 2 }]), { code: 'E_SINK_FAILED' });
  });

  it('reads and checks the common properties', () => {
    assert.deepEqual(readSinkCommon({}), {
      sendSingle: false, dataTemplate: undefined, omitIfEmpty: false, bufferLength: 1024, retryCount: 0, retryInterval: 1000, bufferFullPolicy: 'block',
    });
    assert.throws(() => readSinkCommon({ bufferLength: 0 }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => readSinkCommon({ retryCount: -1 }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => readSinkCommon({ sendSingle: 'yes' }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => new SinkRunner({ open: async () => {}, collect: async () => {}, close: async () => {} }, { dataTemplate: '{{' }), {
      code: 'E_CONNECTOR_CONFIG',
    });
  });
});
