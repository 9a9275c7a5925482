/**
 * PUBACK after processing, not on receipt. mqtt.js acknowledges a QoS 1 message as soon as its
 * 'message' listeners ran, so a host killed before the rows were checkpointed or delivered has lost
 * them: the broker thinks they arrived. With a persistent session the broker sends every
 * unacknowledged message again when the same client id reconnects, so holding the PUBACK until the
 * rule settled them (EmitMeta.onDelivered) gives at-least-once across a crash.
 *
 * How: mqtt.js sends the PUBACK after its public `handleMessage(packet, cb)` hook calls back, and
 * only then reads the next packet, so the PUBACK cannot simply be delayed there (one message at a time).
 * Instead the PUBACK of a held packet is swallowed on its way out (the reader goes on at once) and
 * sent later by release(). Held packets belong to one connection: after a disconnect their ids mean
 * nothing (the broker sends those messages again, with new ids), so they are forgotten.
 *
 * The broker bounds unacknowledged messages per client (Mosquitto `max_inflight_messages`, 20 by
 * default for MQTT 3.1.1): a rule that confirms rows only at its checkpoints needs that raised
 * (docs/reliability.md).
 */
import type { IPublishPacket, MqttClient, Packet } from 'mqtt';

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

export class DeferredAcks {
  /** Packets whose PUBACK waits for release(). */
  private readonly held = new Set<IPublishPacket>();
  /** Released before mqtt.js got to its PUBACK (the release ran inside the 'message' listener). */
  private readonly early = new WeakSet<IPublishPacket>();
  private readonly send: SendPacket;
  /** PUBACKs held now / sent late, for the source's status. */
  heldNow = 0;
  released = 0;

  constructor(private readonly client: MqttClient) {
    const c = client as unknown as { _sendPacket: SendPacket; handleMessage: (p: Packet, cb: (err?: Error) => void) => void };
    this.send = c._sendPacket.bind(client);
    // mqtt.js calls handleMessage's callback, which sends the PUBACK synchronously: that one is swallowed.
    let swallow: number | undefined;
    c.handleMessage = (packet, cb) => {
      const p = packet as IPublishPacket;
      if (p.cmd !== 'publish' || p.qos !== 1 || p.messageId === undefined || this.early.has(p)) return cb();
      this.held.add(p);
      this.heldNow = this.held.size;
      swallow = p.messageId;
      try {
        cb();
      } finally {
        swallow = undefined;
      }
    };
    c._sendPacket = (packet, cb, ...rest) => {
      if (packet.cmd === 'puback' && swallow !== undefined && packet.messageId === swallow) {
        swallow = undefined;
        cb?.();
        return;
      }
      this.send(packet, cb, ...rest);
    };
    client.on('close', () => {
      this.held.clear();
      this.heldNow = 0;
    });
  }

  /**
   * The delivery hook for `packet` (a QoS 1 PUBLISH): acknowledges it once the rows were settled.
   * Not settled (a sink dropped them, the rule stopped first): no PUBACK, so the broker sends the
   * message again when the session reconnects (at-least-once, as NATS's nak).
   */
  releaser(packet: IPublishPacket): (delivered?: boolean) => void {
    return (delivered = true) => {
      if (!delivered) return;
      if (this.held.delete(packet)) {
        this.heldNow = this.held.size;
        this.released++;
        if (this.client.connected) this.send({ cmd: 'puback', messageId: packet.messageId } as Packet);
      } else this.early.add(packet);
    };
  }
}
