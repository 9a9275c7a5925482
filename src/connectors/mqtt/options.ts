/** mqtt.js client options from eKuiper-style connection properties (shared by source and sink). */
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import type { IClientOptions } from 'mqtt';
import { PropReader } from '../props.js';
import type { ConnectorContext } from '../types.js';

export interface MqttConnection {
  url: string;
  options: IClientOptions;
  qos: 0 | 1 | 2;
}

const PROTOCOLS = { '3.1': 3, '3.1.1': 4, '4': 4, '5': 5, '5.0': 5 } as const;

function pem(p: PropReader, inline: string, file: string): string | undefined {
  const v = p.string(inline);
  if (v !== undefined) return v;
  const f = p.string(file);
  if (f === undefined) return undefined;
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw p.fail(file, f, `a readable PEM file (${(e as Error).message})`);
  }
}

/**
 * A clean session gets a fresh id per connection. A persistent one (cleanSession false) needs the
 * same id at every start, or the broker's stored session (subscriptions, QoS 1 messages queued while
 * we were away) is never picked up again: the id is derived from the data directory, the stream (or
 * rule) and the server, so one host's stream keeps its session and two streams never share one.
 */
function defaultClientId(role: 'source' | 'sink', clean: boolean, ctx: ConnectorContext, url: string): string {
  const owner = (role === 'source' ? ctx.stream ?? ctx.ruleId : ctx.ruleId) ?? 'x';
  const readable = owner.replace(/[^\w-]/g, '_').slice(0, 24);
  if (clean) return `streamplug_${role}_${readable}_${randomBytes(4).toString('hex')}`;
  const h = createHash('sha256').update(`${ctx.dataDir ?? ''}\0${role}\0${owner}\0${url}`).digest('hex').slice(0, 8);
  return `streamplug_${role}_${readable}_${h}`;
}

export function mqttConnection(p: PropReader, ctx: ConnectorContext, role: 'source' | 'sink'): MqttConnection {
  const url = p.string('server', 'tcp://127.0.0.1:1883');
  try {
    const u = new URL(url);
    if (!['tcp:', 'mqtt:', 'ssl:', 'mqtts:', 'tls:', 'ws:', 'wss:'].includes(u.protocol)) throw new Error('scheme');
  } catch {
    throw p.fail('server', url, 'a URL like tcp://host:1883, ssl://host:8883 or ws://host/mqtt');
  }
  const qos = p.number('qos', 1);
  if (qos !== 0 && qos !== 1 && qos !== 2) throw p.fail('qos', qos, '0, 1 or 2');
  const pv = p.string('protocolVersion', '3.1.1');
  const protocolVersion = PROTOCOLS[pv as keyof typeof PROTOCOLS];
  if (!protocolVersion) throw p.fail('protocolVersion', pv, 'one of 3.1, 3.1.1, 5');
  const clean = p.bool('cleanSession', true);
  const clientId = p.string('clientId') ?? defaultClientId(role, clean, ctx, url);
  const ca = pem(p, 'ca', 'rootCaPath');
  const cert = pem(p, 'cert', 'certificationPath');
  const key = pem(p, 'key', 'privateKeyPath');
  const options: IClientOptions = {
    clientId,
    protocolVersion,
    username: p.string('username'),
    password: p.string('password'),
    clean,
    keepalive: p.count('keepAlive', 60),
    connectTimeout: p.count('connectTimeout', 30_000),
    reconnectPeriod: p.count('reconnectPeriod', 1000),
    // We subscribe ourselves on every connect, so the connected status follows the SUBACK.
    resubscribe: false,
    rejectUnauthorized: !p.bool('insecureSkipVerify', false),
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
  };
  return { url, options, qos };
}
