/** mqtt.js client options from eKuiper-style connection properties (shared by source and sink). */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
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
  const clientId =
    p.string('clientId') ?? `streamplug_${role}_${(ctx.ruleId ?? 'x').replace(/[^\w-]/g, '_').slice(0, 24)}_${randomBytes(4).toString('hex')}`;
  const ca = pem(p, 'ca', 'rootCaPath');
  const cert = pem(p, 'cert', 'certificationPath');
  const key = pem(p, 'key', 'privateKeyPath');
  const options: IClientOptions = {
    clientId,
    protocolVersion,
    username: p.string('username'),
    password: p.string('password'),
    clean: p.bool('cleanSession', true),
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
