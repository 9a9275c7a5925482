/**
 * The in-process pub/sub behind the memory source and sink: named topics between rules in one
 * process, with MQTT-style wildcards on the subscribing side. Delivery is asynchronous (a microtask
 * per subscriber) so a sink never runs another rule's pipeline inside its own collect call.
 */
import type { Row } from '../types.js';
import { topicMatches, validateFilter, validateTopic } from '../topic.js';

export type MemoryListener = (rows: Row[], topic: string) => void;

interface Subscription {
  filter: string;
  listener: MemoryListener;
}

export class MemoryBus {
  private readonly subs = new Set<Subscription>();

  /** Returns an unsubscribe function. */
  subscribe(filter: string, listener: MemoryListener): () => void {
    validateFilter(filter);
    const sub = { filter, listener };
    this.subs.add(sub);
    return () => {
      this.subs.delete(sub);
    };
  }

  /** Publishes a copy of the rows; returns how many subscriptions matched. */
  publish(topic: string, rows: Row[]): number {
    validateTopic(topic);
    let n = 0;
    for (const sub of this.subs) {
      if (!topicMatches(sub.filter, topic)) continue;
      n++;
      // Each subscriber gets its own shallow copies: rules may add or drop fields.
      const copy = rows.map((r) => ({ ...r }));
      queueMicrotask(() => {
        if (this.subs.has(sub)) sub.listener(copy, topic);
      });
    }
    return n;
  }

  subscriptionCount(): number {
    return this.subs.size;
  }
}

/** The process-wide bus every memory source and sink uses unless given another. */
export const memoryBus = new MemoryBus();
