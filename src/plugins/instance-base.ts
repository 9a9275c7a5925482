/** What every function instance does the same way, whatever runs the batch: shape checks and scalars. */
import { StreamplugError } from '../errors.js';
import { columnOf, scalarAt } from './columns.js';
import { argType, checkGroupOffsets } from './signature.js';
import type { BatchFrame, Column, FunctionInstance, PluginFunction, Scalar, StateImport } from './types.js';

export abstract class FunctionInstanceBase implements FunctionInstance {
  constructor(protected readonly fn: PluginFunction) {}

  /** One call into the plugin: a scalar batch (groupOffsets null) or a batch of groups. */
  protected abstract run(args: readonly Column[], nrows: number, groupOffsets: Uint32Array | null): Column;
  abstract prepare(capacity: number): BatchFrame;
  abstract close(): void;
  abstract exportState(): Record<string, Uint8Array>;
  abstract importState(state: Record<string, Uint8Array>): StateImport | void;

  callBatch(args: readonly Column[], nrows: number): Column {
    if (this.fn.kind !== 'scalar') {
      throw new StreamplugError('E_BAD_REQUEST', `${this.fn.name}() is an aggregate: call it with callGroups`);
    }
    return this.run(args, nrows, null);
  }

  callGroups(args: readonly Column[], nrows: number, groupOffsets: Uint32Array): Column {
    if (this.fn.kind !== 'aggregate') {
      throw new StreamplugError('E_BAD_REQUEST', `${this.fn.name}() is a scalar function: call it with callBatch`);
    }
    checkGroupOffsets(this.fn, nrows, groupOffsets);
    return this.run(args, nrows, groupOffsets);
  }

  call(...args: Scalar[]): Scalar {
    const cols = args.map((v, i) => columnOf(v, argType(this.fn, i)));
    const out = this.fn.kind === 'aggregate' ? this.callGroups(cols, 1, Uint32Array.of(0, 1)) : this.callBatch(cols, 1);
    return scalarAt(out, 0);
  }
}
