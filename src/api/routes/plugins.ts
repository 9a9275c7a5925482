import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { StreamplugError } from '../../errors.js';
import { spoolStream } from '../../manager/fetch.js';
import { isPluginType, type PluginType } from '../../manager/layout.js';
import { assertPluginName } from '../../manager/unpack.js';
import type { PluginManager, ZipSource } from '../../manager/manager.js';
import type { HostServices, RouteOptions } from '../context.js';
import { actorOf } from '../security/index.js';
import { assertInsideRoots, assertNamedZip } from '../security/file-roots.js';
import { parseIsolation } from '../../manager/host-config.js';
import type { Isolation } from '../../plugins/types.js';

interface InstallBody {
  name?: string;
  origin?: string;
  source: ZipSource;
  functions?: string[];
  sha256?: string;
  /** Allows a downgrade (JSON "force": true or ?force=true). */
  force?: boolean;
  isolation?: Isolation;
  /** Removes a spooled upload once the install is over. */
  cleanup(): void;
}

function asType(t: string): PluginType {
  if (!isPluginType(t)) {
    throw new StreamplugError('E_NOT_FOUND', `plugin type "${t}" is unknown; expected /plugins/sources, /plugins/sinks or /plugins/functions`, {
      type: t,
    });
  }
  return t;
}

function parseFunctions(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v as string[];
  if (typeof v === 'string') {
    const s = v.trim();
    if (s.startsWith('[')) {
      try {
        return JSON.parse(s) as string[];
      } catch {
        throw new StreamplugError('E_BAD_REQUEST', `"functions" is not a JSON array: ${s}`);
      }
    }
    return s.split(',').map((x) => x.trim()).filter(Boolean);
  }
  throw new StreamplugError('E_BAD_REQUEST', '"functions" must be an array of function names');
}

/** A fresh file under the data directory's tmp/ for an upload. */
function uploadPath(manager: PluginManager): string {
  fs.mkdirSync(manager.layout.tmp, { recursive: true });
  return path.join(manager.layout.tmp, `upload-${process.pid}-${crypto.randomBytes(6).toString('hex')}.zip`);
}

/**
 * Spools an upload to disk completely, before any install lock is taken: a client that stalls holds
 * only its own connection (until the server's timeouts close it), never the queue of changes.
 */
async function spoolUpload(input: Readable, dest: string, manager: PluginManager): Promise<void> {
  try {
    await spoolStream(input, dest, { maxBytes: manager.limits.maxZipBytes });
  } catch (e) {
    fs.rmSync(dest, { force: true });
    if (e instanceof StreamplugError) throw e;
    const fe = e as { statusCode?: number; code?: string; message?: string };
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) throw e;
    // the client closed the connection, or the body ended before its length: nothing to install
    throw new StreamplugError('E_BAD_REQUEST', `the upload ended early (${fe.code ?? fe.message ?? 'aborted'}); expected the whole zip: send it again`);
  }
}

/** Multipart parse errors (busboy) are the client's: a malformed body is 400, a limit passed 413. */
function multipartError(e: unknown): unknown {
  if (e instanceof StreamplugError) return e;
  const fe = e as { statusCode?: number; message?: string; code?: string };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return e;
  return new StreamplugError('E_BAD_REQUEST', `the multipart body is malformed (${fe.message ?? String(e)}); expected fields and one zip file part, properly closed`);
}

/**
 * The three ways a zip arrives: JSON `{"name","file",…}` naming a path or URL (eKuiper's way),
 * a multipart upload (fields name/functions/sha256 and a file part), or a raw application/zip body
 * with `?name=` (and optional `?sha256=`, `?functions=`). Uploads are on disk when this returns.
 */
async function readInstallBody(req: FastifyRequest, services: HostServices): Promise<InstallBody> {
  const { manager } = services;
  const query = singleValues(req.query);
  const named = (file: string, name?: string): ZipSource => {
    // the client's own claims are judged first: a bad name is a bad name, whatever the path
    if (name !== undefined) assertPluginName(name);
    if (!/^(https?):\/\//i.test(file)) {
      const local = /^file:\/\//i.test(file) ? fileUrlPath(file) : file;
      assertInsideRoots(local, services.fileRoots ?? {});
      assertNamedZip(local);
    }
    return { file };
  };
  if (req.isMultipart()) {
    const fields: Record<string, string> = {};
    let spooled: string | undefined;
    const cleanup = () => {
      if (spooled) fs.rmSync(spooled, { force: true });
    };
    try {
      for await (const part of req.parts()) {
        if (part.type === 'file') {
          if (spooled) throw new StreamplugError('E_BAD_REQUEST', 'multipart upload has more than one file; expected one zip');
          spooled = uploadPath(manager);
          await spoolUpload(part.file, spooled, manager);
          if (part.file.truncated) throw new StreamplugError('E_ZIP_TOO_BIG', `uploaded zip exceeds ${manager.limits.maxZipBytes} bytes, the limit`);
        } else {
          fields[part.fieldname] = String(part.value);
        }
      }
    } catch (e) {
      cleanup();
      throw multipartError(e);
    }
    if (!spooled) {
      if (fields.file) return { ...fieldsOf(fields), source: named(fields.file, fields.name), cleanup };
      throw new StreamplugError('E_BAD_REQUEST', 'multipart upload has no file part; expected the plugin zip as a file field');
    }
    return { ...fieldsOf(fields), source: { file: spooled }, origin: 'upload', cleanup };
  }
  const body = req.body as unknown;
  if (body && typeof (body as Readable).pipe === 'function') {
    const spooled = uploadPath(manager);
    await spoolUpload(body as Readable, spooled, manager);
    return {
      name: query.name,
      sha256: query.sha256,
      functions: parseFunctions(query.functions),
      isolation: parseIsolation(query.isolation),
            source: { file: spooled },
      origin: 'upload',
      cleanup: () => fs.rmSync(spooled, { force: true }),
    };
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new StreamplugError('E_BAD_REQUEST', 'expected a JSON body {"name": "...", "file": "<path or URL of the zip>"}, a multipart upload, or an application/zip body');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.file !== 'string' || !b.file) {
    throw new StreamplugError('E_BAD_REQUEST', 'the body has no "file"; expected a path, file:// URL or http(s):// URL of the plugin zip');
  }
  if (b.name !== undefined && typeof b.name !== 'string') throw new StreamplugError('E_BAD_REQUEST', '"name" must be a string');
  if (b.sha256 !== undefined && typeof b.sha256 !== 'string') throw new StreamplugError('E_BAD_REQUEST', '"sha256" must be a hex string');
  const file = b.file;
  return {
    name: b.name as string | undefined,
    sha256: b.sha256 as string | undefined,
    functions: parseFunctions(b.functions),
    isolation: parseIsolation(b.isolation),
        force: b.force === true,
    source: named(file, b.name as string | undefined),
    cleanup() {},
  };
}

/** Query parameters as single strings: `?name=a&name=b` is a client error, not an array to trip over. */
function singleValues(q: unknown): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries((q ?? {}) as Record<string, unknown>)) {
    if (v !== undefined && typeof v !== 'string') throw new StreamplugError('E_BAD_REQUEST', `query parameter "${k}" is given more than once; expected it once`);
    out[k] = v;
  }
  return out;
}

function fileUrlPath(u: string): string {
  try {
    return fileURLToPath(u);
  } catch {
    throw new StreamplugError('E_BAD_REQUEST', `"${u}" is not a valid file:// URL`);
  }
}

/**
 * Aborted when the client goes away before the answer is sent, so that a queued change whose
 * requester is gone never runs.
 */
function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  // a response emits 'close' when it is done or when its connection went away first
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

function fieldsOf(f: Record<string, string>): Pick<InstallBody, 'name' | 'functions' | 'sha256' | 'isolation'> {
  return { name: f.name || undefined, sha256: f.sha256 || undefined, functions: parseFunctions(f.functions), isolation: parseIsolation(f.isolation) };
}

/** eKuiper's plugin API: /plugins/{sources|sinks|functions}, /plugins/udfs. */
export const pluginRoutes: FastifyPluginAsync<RouteOptions> = async (app, { services }) => {
  const { manager } = services;

  // A raw zip body is handed to the route as a stream: the manager spools it with its own limit.
  app.addContentTypeParser(['application/zip', 'application/x-zip-compressed', 'application/octet-stream'], (_req, payload, done) =>
    done(null, payload),
  );

  app.get('/plugins/udfs', async () => manager.listUdfs());

  // Who installed, updated, deleted, enabled or quarantined what, and when (newest last).
  app.get('/plugins/audit', async () => manager.auditEntries());

  app.get<{ Params: { name: string } }>('/plugins/udfs/:name', async (req) => {
    const u = manager.udf(req.params.name);
    return { name: u.name, plugin: u.plugin };
  });

  app.get<{ Params: { type: string } }>('/plugins/:type', async (req) => manager.list(asType(req.params.type)));

  app.post<{ Params: { type: string } }>('/plugins/:type', async (req, reply) => {
    const type = asType(req.params.type);
    const signal = clientGone(reply);
    const body = await readInstallBody(req, services);
    try {
      if (!body.name) throw new StreamplugError('E_BAD_REQUEST', 'the request has no "name"; expected the plugin name (^[A-Za-z0-9_-]+$)');
      const r = await manager.install({
        type,
        name: body.name,
        source: body.source,
        functions: body.functions,
        sha256: body.sha256,
        origin: body.origin,
        isolation: body.isolation,
        actor: actorOf(req),
        signal,
      });
      return reply.code(201).type('text/plain; charset=utf-8').send(r.message);
    } finally {
      body.cleanup();
    }
  });

  app.get<{ Params: { type: string; name: string } }>('/plugins/:type/:name', async (req) =>
    manager.describe(asType(req.params.type), req.params.name),
  );

  app.put<{ Params: { type: string; name: string }; Querystring: { force?: string } }>('/plugins/:type/:name', async (req, reply) => {
    const type = asType(req.params.type);
    const signal = clientGone(reply);
    const body = await readInstallBody(req, services);
    const { force: f } = singleValues(req.query);
    const force = body.force || f === 'true' || f === '1';
    try {
      if (body.name && body.name !== req.params.name) {
        throw new StreamplugError('E_BAD_REQUEST', `the body names "${body.name}" but the path names "${req.params.name}"; expected the same plugin`);
      }
      const r = await manager.update({
        type,
        name: req.params.name,
        source: body.source,
        functions: body.functions,
        sha256: body.sha256,
        origin: body.origin,
        force,
        isolation: body.isolation,
        actor: actorOf(req),
        signal,
      });
      return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
    } finally {
      body.cleanup();
    }
  });

  app.delete<{ Params: { type: string; name: string }; Querystring: { force?: string } }>('/plugins/:type/:name', async (req, reply) => {
    const { force: f } = singleValues(req.query);
    const force = f === 'true' || f === '1';
    const r = await manager.remove(asType(req.params.type), req.params.name, { force, actor: actorOf(req), signal: clientGone(reply) });
    return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
  });

  // Lifts a quarantine (after a crash) and loads the plugin; its held-back rules start.
  app.post<{ Params: { type: string; name: string } }>('/plugins/:type/:name/enable', async (req, reply) => {
    const r = await manager.enable(asType(req.params.type), req.params.name, actorOf(req));
    return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
  });

  app.post<{ Params: { name: string } }>('/plugins/functions/:name/register', async (req, reply) => {
    const body = (req.body ?? {}) as { functions?: unknown };
    const msg = await manager.registerFunctions(req.params.name, body.functions);
    return reply.code(200).type('text/plain; charset=utf-8').send(msg);
  });
};
