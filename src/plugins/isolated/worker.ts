/**
 * One isolated plugin's worker process and its supervisor: spawn, the ready handshake, synchronous
 * requests over the shared-memory channel, and what happens when the worker dies — the crash is
 * logged by name (E_PLUGIN_CRASHED), the worker restarts with exponential backoff and its function
 * instances are made again, and after `maxCrashes` crashes within `crashWindowMs` the plugin is
 * quarantined (onCrash with quarantine: true) and stays down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { StreamplugError, type ErrorCode } from '../../errors.js';
import { addonPath, hostAddon, type PluginLogLine } from '../native-addon.js';
import type { IsolatedWorkerStatus } from '../handle.js';
import type { PluginCrashEvent } from '../types.js';
import type { IoDescription } from '../native-io.js';
import { Arena, HEADER_BYTES, MESSAGE_OFFSET, OP, SLOT, STATUS, TRIP, type NativeChannel } from './protocol.js';

export interface IsolationOptions {
  /** A call (or validate, instantiate, close) running longer than this kills the worker. Default 5000. */
  callTimeoutMs?: number;
  /** Start of the worker up to its ready line (dlopen, constructors, init). Default 10000. */
  loadTimeoutMs?: number;
  /** RLIMIT_AS for the worker, in bytes, on top of the shared arena. Default: none. */
  memoryLimitBytes?: number;
  /** Quarantine after this many crashes within crashWindowMs. Default 3 in 5 minutes. */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** First restart delay; doubles per crash in the window, capped at maxBackoffMs. Default 100 / 10000. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Size of the shared arena (columns, frames). Default 256 MiB, sparse: untouched pages cost nothing. */
  arenaBytes?: number;
  /** Marks this host's workers, so a later host can find leftovers (reapLeftoverWorkers). */
  tag?: string;
  /** Where crash, restart and quarantine lines go (one line each). Default: stderr. */
  report?: (line: string) => void;
  /** The worker executable (or a wrapper that execs it, e.g. under valgrind). Default: workerPath. */
  workerPath?: string;
}

export interface WorkerHooks {
  onLog: (line: PluginLogLine) => void;
  onCrash?: (e: PluginCrashEvent) => void;
}

/** The ready line: what the worker's OpenLibrary + InitLibrary found (native/worker/worker.cc). */
export interface WorkerDescription {
  pid: number;
  name: string;
  version: string;
  contractMajor: number;
  contractMinor: number;
  compiler: string;
  arch: string;
  libc: string;
  manifest: string;
  functions: {
    name: string; kind: number; flags: number; minArgs: number; maxArgs: number;
    argTypes: number[]; argFlags: number[]; resultType: number; hasValidate: boolean; hasClose: boolean;
  }[];
  sources: string[];
  sinks: string[];
  io: IoDescription;
}

type State = IsolatedWorkerStatus['state'];
const STDERR_LINES = 20;

/** Where the worker executable is: beside the addon (binding.gyp builds both). */
export const workerPath = process.env.STREAMPLUG_WORKER ?? path.join(path.dirname(addonPath), 'streamplug_worker');

export class IsolatedWorker {
  readonly channel: NativeChannel;
  readonly arena: Arena;
  readonly slots: Uint32Array;
  readonly bytes: Uint8Array;
  description!: WorkerDescription;
  private child?: ChildProcess;
  private state: State = 'restarting';
  private stderrTail: string[] = [];
  private crashes: number[] = [];
  private restarts = 0;
  /** The hook running when the worker died in a call (the exit event comes later). */
  private inflight?: { hook: string; rule?: string; timedOut?: boolean };
  private restartTimer?: NodeJS.Timeout;
  /** Sources and sinks running in this worker: id -> their wake, and what to blame a crash on (src/plugins/isolated/io.ts). */
  readonly ioWakes = new Map<number, { wake: () => void; hook: string; rule: string }>();
  private nextIoId = 0x80000000; // apart from function instance ids
  /** Bumped per worker process: an io instance opened in an earlier one is gone. */
  generation = 0;
  /** The latest crash, as reported (E_PLUGIN_CRASHED ...), and the generation that died in it. */
  lastCrash = '';
  crashedGeneration = 0;
  /** Instances to make again after a restart: id -> [function index, rule]. */
  readonly instances = new Map<number, [number, string]>();
  private readonly opts: Required<Omit<IsolationOptions, 'memoryLimitBytes' | 'tag' | 'report'>> & Pick<IsolationOptions, 'memoryLimitBytes' | 'tag' | 'report'>;
  private readonly executable: string;

  private constructor(readonly file: string, options: IsolationOptions, private readonly hooks: WorkerHooks) {
    this.opts = {
      callTimeoutMs: options.callTimeoutMs ?? 5000,
      loadTimeoutMs: options.loadTimeoutMs ?? 10000,
      memoryLimitBytes: options.memoryLimitBytes,
      maxCrashes: options.maxCrashes ?? 3,
      crashWindowMs: options.crashWindowMs ?? 5 * 60_000,
      backoffMs: options.backoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      arenaBytes: options.arenaBytes ?? 256 * 1024 * 1024,
      tag: options.tag,
      report: options.report,
      workerPath: options.workerPath ?? workerPath,
    };
    this.executable = this.opts.workerPath;
    this.channel = (hostAddon() as unknown as { openChannel(bytes: number): NativeChannel }).openChannel(this.opts.arenaBytes);
    this.arena = new Arena(HEADER_BYTES, this.channel.buffer.byteLength);
    this.slots = new Uint32Array(this.channel.buffer, 0, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(this.channel.buffer);
  }

  /** Spawns the worker and waits for its ready line. Throws the worker's refusal (same codes as in-process) or E_LOAD_TIMEOUT. */
  static async start(file: string, options: IsolationOptions, hooks: WorkerHooks): Promise<IsolatedWorker> {
    const executable = options.workerPath ?? workerPath;
    if (!fs.existsSync(executable)) {
      throw new StreamplugError('E_ISOLATION', `the worker executable ${executable} is missing; build it with \`npm run build:addon\``, { file: executable });
    }
    const worker = new IsolatedWorker(file, options, hooks);
    try {
      worker.description = await worker.spawn();
    } catch (err) {
      worker.channel.close();
      throw err;
    }
    worker.state = 'ready';
    return worker;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  status(): IsolatedWorkerStatus {
    return { state: this.state, pid: this.pid, restarts: this.restarts, recentCrashes: this.recentCrashes(), arenaBytesInUse: this.arena.inUse() };
  }

  private spawn(): Promise<WorkerDescription> {
    const args = [this.file, '--parent', String(process.pid)];
    if (this.opts.memoryLimitBytes) args.push('--memory-limit', String(this.opts.memoryLimitBytes + this.channel.buffer.byteLength));
    if (this.opts.tag) args.push('--tag', this.opts.tag);
    // Spawned from the JS thread, which lives as long as the host: PR_SET_PDEATHSIG in the worker
    // is tied to the thread that forked it. stdin is the lifeline, fd 3 the channel.
    const child = spawn(this.executable, args, { stdio: ['pipe', 'pipe', 'pipe', this.channel.fd] });
    this.child = child;
    this.generation++;
    this.stderrTail = [];
    child.stdin!.on('error', () => undefined);
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
    });
    return new Promise<WorkerDescription>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error, d?: WorkerDescription): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          if (this.child === child) this.child = undefined; // its later exit is not a crash of a running worker
          child.kill('SIGKILL');
          reject(err);
        } else resolve(d!);
      };
      const timer = setTimeout(() => {
        settle(new StreamplugError('E_LOAD_TIMEOUT', `${this.file}: the isolated worker did not finish loading the plugin (dlopen, constructors, init) within ${this.opts.loadTimeoutMs} ms; it was killed. Fix the plugin's init, or raise loadTimeoutMs`, { file: this.file }));
      }, this.opts.loadTimeoutMs);
      readline.createInterface({ input: child.stdout! }).on('line', (text) => {
        let msg: { type?: string; code?: string; message?: string; id?: number } & Partial<WorkerDescription> & Partial<PluginLogLine>;
        try {
          msg = JSON.parse(text);
        } catch {
          return; // a plugin writing to stdout itself: not ours
        }
        if (msg.type === 'ready') {
          if (this.channel.attach(msg.pid!) === false) settle(new StreamplugError('E_ISOLATION', `${this.file}: the worker (pid ${msg.pid}) vanished right after it started`));
          else settle(undefined, msg as WorkerDescription);
        } else if (msg.type === 'error') {
          settle(new StreamplugError((msg.code ?? 'E_ISOLATION') as ErrorCode, msg.message ?? 'the worker refused the plugin'));
        } else if (msg.type === 'wake') {
          this.ioWakes.get(msg.id ?? -1)?.wake();
        } else if (msg.type === 'log') {
          this.hooks.onLog({ plugin: msg.plugin ?? '?', rule: msg.rule ?? '', level: msg.level ?? 30, message: msg.message ?? '' });
        }
      });
      child.on('error', (err) => settle(new StreamplugError('E_ISOLATION', `${this.file}: cannot start the worker ${this.executable}: ${err.message}`)));
      // 'close', not 'exit': it comes once stdout and stderr are read to the end, so a refusal the
      // worker printed before exiting, and its last stderr lines, are in hand.
      child.on('close', (code, signal) => {
        if (!settled) {
          // Died while loading: a constructor that aborts or exits, or a crash in init.
          settle(new StreamplugError('E_PLUGIN_CRASHED', `${this.file}: the isolated worker died while loading the plugin (${signal ?? `exit ${code}`})${this.tailText()}`, { file: this.file, signal: signal ?? undefined }));
          return;
        }
        if (this.child === child) this.onExit(code, signal);
      });
    });
  }

  private tailText(): string {
    return this.stderrTail.length ? `; last stderr lines: ${this.stderrTail.join(' | ')}` : '';
  }

  private recentCrashes(now = Date.now()): number {
    this.crashes = this.crashes.filter((t) => now - t < this.opts.crashWindowMs);
    return this.crashes.length;
  }

  private report(line: string): void {
    (this.opts.report ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  /** The worker exited on its own (crash, exit(), OOM kill) or was killed for a timeout. */
  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.channel.detach();
    this.child = undefined;
    if (this.state === 'stopped') return;
    // Died outside a request: the sources' and sinks' threads are what ran plugin code meanwhile.
    const io = [...this.ioWakes.values()];
    const ctx = this.inflight ?? (io.length ? { hook: [...new Set(io.map((i) => i.hook))].join(','), rule: [...new Set(io.map((i) => i.rule).filter(Boolean))].join(',') } : undefined);
    this.inflight = undefined;
    const name = this.description.name;
    const how = ctx?.timedOut ? `killed after exceeding callTimeoutMs (${this.opts.callTimeoutMs} ms)` : signal ? `killed by ${signal}` : `exit status ${code}`;
    const where = ctx ? ` in hook ${ctx.hook}${ctx.rule ? `, rule ${ctx.rule}` : ''}` : ' outside any call';
    this.crashes.push(Date.now());
    const count = this.recentCrashes();
    const quarantine = count >= this.opts.maxCrashes;
    const detail = `plugin ${name} (isolated worker) ${how}${where}${this.tailText()}`;
    this.crashedGeneration = this.generation;
    this.lastCrash = `E_PLUGIN_CRASHED plugin=${name} hook=${ctx?.hook ?? '-'} rule=${ctx?.rule || '-'} signal=${signal ?? '-'} exit=${code ?? '-'}: ${detail}`;
    this.report(this.lastCrash);
    if (quarantine) {
      this.state = 'quarantined';
      this.report(`E_QUARANTINED plugin=${name}: ${count} crashes within ${Math.round(this.opts.crashWindowMs / 1000)} s; not restarted. Fix the plugin, then update or enable it`);
    } else {
      this.state = 'restarting';
      const delay = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** (count - 1));
      this.restartTimer = setTimeout(() => void this.restart(), delay);
      this.restartTimer.unref();
    }
    this.hooks.onCrash?.({ plugin: name, hook: ctx?.hook, rule: ctx?.rule || undefined, signal: signal ?? undefined, detail, quarantine });
    // Sources and sinks of the dead worker look again: they find it gone and report the crash.
    for (const i of io) i.wake();
  }

  /** An id for a source or sink instance in this worker. */
  ioId(): number {
    return this.nextIoId++;
  }

  private async restart(): Promise<void> {
    if (this.state !== 'restarting') return;
    try {
      await this.spawn();
    } catch (err) {
      // spawn already killed it; its exit (not yet seen as ours: settled late) counts as a crash
      if (this.state === 'restarting') {
        this.inflight = { hook: 'restart' };
        this.report(`plugin ${this.description.name}: restart failed: ${(err as Error).message}`);
        this.onExit(null, null);
      }
      return;
    }
    if (this.state !== 'restarting') {
      this.kill();
      return;
    }
    this.restarts++;
    this.state = 'ready';
    try {
      for (const [id, [fn, rule]] of this.instances) this.instantiate(id, fn, rule);
      this.report(`plugin ${this.description.name}: isolated worker restarted (pid ${this.pid}); ${this.instances.size} function instance(s) made again, their state starts empty`);
    } catch {
      // the worker died again at once: its exit handler takes over
    }
  }

  /** Makes instance `id` in the worker (again, after a restart). */
  instantiate(id: number, fn: number, rule: string): void {
    const ruleBytes = Buffer.from(rule, 'utf8');
    const at = this.temp(ruleBytes.length);
    try {
      this.bytes.set(ruleBytes, at);
      this.request(OP.instantiate, id, [fn, at, ruleBytes.length], { hook: 'instantiate', rule });
    } finally {
      this.arena.release(at);
    }
    this.instances.set(id, [fn, rule]);
  }

  /** Arena bytes for one request; E_ISOLATION when the arena is full. Release them afterwards. */
  temp(bytes: number): number {
    const at = this.arena.alloc(bytes);
    if (at < 0) {
      throw new StreamplugError('E_ISOLATION', `plugin ${this.description.name}: the isolated worker's shared arena (${this.channel.buffer.byteLength} bytes) has no room for ${bytes} more bytes; use smaller batches or a larger arenaBytes`);
    }
    return at;
  }

  /**
   * One synchronous request. Throws E_PLUGIN_RESTARTING / E_QUARANTINED when no worker
   * serves, E_PLUGIN_CRASHED when it died during the request, E_CALL_TIMEOUT when it ran over
   * (the worker is killed). Returns the response status.
   */
  request(op: number, id: number, args: number[], ctx: { hook: string; rule?: string }): number {
    this.ready(ctx);
    const s = this.slots;
    s[SLOT.op] = op;
    s[SLOT.id] = id;
    s[SLOT.arg0] = args[0] ?? 0;
    s[SLOT.arg1] = args[1] ?? 0;
    s[SLOT.arg2] = args[2] ?? 0;
    const trip = this.channel.roundTrip(this.opts.callTimeoutMs);
    if (trip === TRIP.answered) return s[SLOT.status];
    this.failed(trip, ctx);
  }

  /** The frame's fast path: the same as request(OP.call, ...) with fewer steps. */
  call(id: number, block: number, nrows: number, ctx: { hook: string; rule?: string }): number {
    if (this.state !== 'ready') this.ready(ctx);
    const s = this.slots;
    s[SLOT.op] = OP.call;
    s[SLOT.id] = id;
    s[SLOT.arg0] = block;
    s[SLOT.arg1] = nrows;
    const trip = this.channel.roundTrip(this.opts.callTimeoutMs);
    if (trip === TRIP.answered) return s[SLOT.status];
    this.failed(trip, ctx);
  }

  message(): string {
    // Clamped: the plugin shares this memory and may have scribbled over the slot.
    const length = Math.min(this.slots[SLOT.messageLength], HEADER_BYTES - MESSAGE_OFFSET);
    return Buffer.from(this.channel.buffer, MESSAGE_OFFSET, length).toString('utf8');
  }

  private ready(ctx: { hook: string; rule?: string }): void {
    if (this.state === 'ready') return;
    const name = this.description?.name ?? this.file;
    if (this.state === 'quarantined') {
      throw new StreamplugError('E_QUARANTINED', `plugin ${name} is quarantined after ${this.opts.maxCrashes} crashes within ${Math.round(this.opts.crashWindowMs / 1000)} s; ${ctx.hook} refused. Fix the plugin, then update or enable it`, { plugin: name });
    }
    if (this.state === 'stopped') throw new StreamplugError('E_PLUGIN_NOT_LOADED', `plugin ${name} was unloaded; its function instances are gone`, { plugin: name });
    throw new StreamplugError('E_PLUGIN_RESTARTING', `plugin ${name} crashed and its isolated worker is restarting; ${ctx.hook} failed, try again shortly`, { plugin: name });
  }

  private failed(trip: number, ctx: { hook: string; rule?: string }): never {
    const name = this.description.name;
    if (trip === TRIP.noWorker) this.ready(ctx);
    // The exit event (with the signal) comes once the JS thread is free again: until then no call goes in.
    this.state = 'restarting';
    this.inflight = { ...ctx, timedOut: trip === TRIP.timedOut };
    const rule = ctx.rule ? `, rule ${ctx.rule}` : '';
    if (trip === TRIP.timedOut) {
      throw new StreamplugError('E_CALL_TIMEOUT', `plugin ${name}: ${ctx.hook}${rule} ran longer than callTimeoutMs (${this.opts.callTimeoutMs} ms); its isolated worker was killed and restarts`, { plugin: name, hook: ctx.hook, rule: ctx.rule });
    }
    throw new StreamplugError('E_PLUGIN_CRASHED', `plugin ${name} crashed in hook ${ctx.hook}${rule} (its isolated worker died; the host keeps running and restarts it)`, { plugin: name, hook: ctx.hook, rule: ctx.rule });
  }

  kill(): void {
    this.channel.kill();
  }

  /** Orderly stop: deinit in the worker (closing its instances), then the channel goes. */
  stop(): void {
    clearTimeout(this.restartTimer);
    const wasReady = this.state === 'ready';
    this.state = 'stopped';
    if (wasReady) {
      const s = this.slots;
      s[SLOT.op] = OP.shutdown;
      // Close hooks and deinit, bounded like any call (a timeout kills the worker). Answered: the
      // worker exits by itself, so let it finish (no kill by close() below).
      if (this.channel.roundTrip(this.opts.callTimeoutMs) === TRIP.answered) this.channel.detach();
    }
    this.child?.stdin?.end(); // the lifeline: a worker not yet exiting does so now
    this.channel.close();
    this.instances.clear();
  }
}

/**
 * Workers left by a host that died without taking them along (PDEATHSIG and the lifeline normally
 * make that impossible): any streamplug_worker with this tag whose parent is not this process is
 * killed. Returns the pids killed.
 */
export function reapLeftoverWorkers(tag: string): number[] {
  const killed: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return killed;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0] ?? '') !== 'streamplug_worker') continue;
      const t = argv.indexOf('--tag');
      if (t < 0 || argv[t + 1] !== tag) continue;
      const ppid = Number(/PPid:\s*(\d+)/.exec(fs.readFileSync(`/proc/${e}/status`, 'utf8'))?.[1]);
      if (ppid === process.pid) continue;
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return killed;
}
