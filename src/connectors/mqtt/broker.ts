/** An embedded MQTT 3.1.1 broker (aedes on a TCP or TLS port) for demos, tests and single-box setups. */
import net from 'node:net';
import tls from 'node:tls';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  /** mqtt://host:port (mqtts:// with TLS), with the real port when 0 was asked for. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly broker: Aedes;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  host?: string;
  /** 0 picks a free port. Default 1883. */
  port?: number;
  /** Serve MQTT over TLS with these options (at least key and cert). */
  tls?: tls.TlsOptions;
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? '127.0.0.1';
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const onSocket = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  };
  const server: net.Server = opts.tls ? tls.createServer(opts.tls, onSocket) : net.createServer(onSocket);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 1883, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw e;
  }
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    broker,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()));
        await new Promise<void>((r) => broker.close(() => r()));
        for (const s of sockets) s.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}
