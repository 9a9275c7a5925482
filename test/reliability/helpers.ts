/** Real parts for the reliability tests: free ports, an HTTP target that goes down and up, RSS, waiting. */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** An HTTP endpoint that records every row it accepts, and can be taken down and brought back on its port. */
export class Target {
  readonly rows: number[] = [];
  private server?: http.Server;
  constructor(readonly port: number) {}
  async up(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const v = JSON.parse(body) as { n: number } | { n: number }[];
        for (const r of Array.isArray(v) ? v : [v]) this.rows.push(r.n);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  async down(): Promise<void> {
    const s = this.server!;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}


/** Polls cond(); `ms` is a bound against hanging, never an assertion on speed. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
