import type { Command } from 'commander';
import { seedSamples, demoSummary, defaultSamplesDir } from '../../host/demo.js';
import { hostDefaults, startHost } from '../../host/host.js';
import { installDemo } from '../../rules/index.js';
import { fail, usage } from './plugin.js';

interface StartOpts {
  data?: string;
  port?: string;
  host?: string;
  demo?: boolean;
  trustedKey?: string[];
  allowPrivateUrls?: boolean;
  mqttPort?: string;
  mqttUrl?: string;
  /** false with --no-auth (commander's negation). */
  auth?: boolean;
  jwt?: boolean;
  iKnow?: boolean;
  allowedOrigin?: string[];
  allowedHost?: string[];
  fileRoot?: string[];
  requireSignatures?: boolean;
  socket?: string;
  requestTimeout?: string;
  idleTimeout?: string;
}

export function register(program: Command): void {
  program
    .command('start')
    .description('run the host: load the plugins of the data directory and serve the REST API')
    .option('--data <dir>', 'data directory (default $STREAMPLUG_DATA or ./data)')
    .option('--port <n>', 'port (default $STREAMPLUG_PORT or 9081; 0 picks a free one)')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--demo', `install the sample plugins from ${defaultSamplesDir} if there are no function plugins yet`)
    .option('--trusted-key <pem...>', 'trusted public key(s) in addition to <data>/etc/trusted-keys/*.pem')
    .option('--allow-private-urls', 'let http(s) plugin downloads reach loopback/private addresses')
    .option('--mqtt-port <n>', 'port of the embedded MQTT broker (default $STREAMPLUG_MQTT_PORT or 1883; 0 picks a free one)')
    .option('--mqtt-url <url>', 'use this external MQTT broker instead of the embedded one ($STREAMPLUG_MQTT_URL)')
    .option('--no-auth', 'serve the REST API without authentication (eKuiper\'s default; a warning is logged)')
    .option('--jwt', 'authenticate with eKuiper-style RS256 JWTs verified against <data>/etc/mgmt/ instead of the token')
    .option('--i-know', 'allow --no-auth together with a non-loopback --host')
    .option('--allowed-origin <origin...>', 'web origins (scheme://host:port) allowed to call the API (default none)')
    .option('--allowed-host <name...>', 'host names the API answers to besides IP addresses and localhost')
    .option('--file-root <dir...>', 'folders REST clients may name local zips in (default: anywhere with auth, nowhere without)')
    .option('--require-signatures', 'refuse plugins not signed by a key in <data>/etc/trusted-keys (off by default)')
    .option('--socket <path>', 'listen on this unix socket (mode 0600) instead of TCP')
    .option('--request-timeout <ms>', 'a whole request (upload included) must arrive within this (default 300000)')
    .option('--idle-timeout <ms>', 'a connection with no bytes moving is closed after this (default 120000)')
    .action(async (o: StartOpts) => {
      let port: number | undefined;
      if (o.port !== undefined) {
        port = Number(o.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port ${o.port} is not a port number; expected 0..65535`);
      }
      const mqttUrl = o.mqttUrl ?? process.env.STREAMPLUG_MQTT_URL;
      const mqttPortText = o.mqttPort ?? process.env.STREAMPLUG_MQTT_PORT ?? '1883';
      const mqttPort = Number(mqttPortText);
      if (!Number.isInteger(mqttPort) || mqttPort < 0 || mqttPort > 65535) usage(`--mqtt-port ${mqttPortText} is not a port number; expected 0..65535`);
      const { dataDir } = hostDefaults({ dataDir: o.data });
      if (o.auth === false && o.jwt) usage('--no-auth and --jwt contradict each other; choose one');
      const ms = (flag: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) usage(`${flag} ${v} is not a number of milliseconds; expected a positive integer`);
        return n;
      };
      const requestTimeoutMs = ms('--request-timeout', o.requestTimeout);
      const idleTimeoutMs = ms('--idle-timeout', o.idleTimeout);
      let seeded: string[] = [];
      try {
        const host = await startHost({
          dataDir,
          port,
          host: o.host,
          trustedKeyFiles: o.trustedKey,
          allowPrivateUrls: o.allowPrivateUrls || process.env.STREAMPLUG_ALLOW_PRIVATE_URLS === '1',
          beforeStart: o.demo ? (dir) => (seeded = seedSamples(dir)) : undefined,
          mqtt: mqttUrl ? { url: mqttUrl } : { port: mqttPort },
          auth: o.auth === false ? 'none' : o.jwt ? 'jwt' : undefined,
          iKnow: o.iKnow,
          allowedOrigins: o.allowedOrigin,
          allowedHosts: o.allowedHost,
          fileRoots: o.fileRoot,
          requireSignatures: o.requireSignatures ? true : undefined,
          socketPath: o.socket,
          timeouts: { ...(requestTimeoutMs ? { requestTimeoutMs } : {}), ...(idleTimeoutMs ? { idleTimeoutMs } : {}) },
        });
        const demo = o.demo ? await installDemo(host.rules) : undefined;
        if (o.demo) process.stderr.write(demoSummary(host, seeded, demo) + '\n');
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          host.logger.info({ signal }, `received ${signal}, stopping`);
          Promise.resolve(demo?.stop())
            .then(() => host.close())
            .then(
            () => process.exit(0),
            (e) => {
              process.stderr.write(`streamplug: error while stopping: ${(e as Error).message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      } catch (e) {
        fail(e);
      }
    });
}
