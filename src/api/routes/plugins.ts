import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { StreamplugError } from '../../errors.js';
import { spoolStream } from '../../manager/fetch.js';
import { isPluginType, type PluginType } from '../../manager/layout.js';
import type { PluginManager, ZipSource } from '../../manager/manager.js';
import { parseIsolation } from '../../manager/host-config.js';
import type { Isolation } from '../../plugins/types.js';
import type { RouteOptions } from '../context.js';

interface InstallBody {
  name?: string;
  origin?: string;
  source: ZipSource;
  functions?: string[];
  sha256?: string;
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

/**
 * The three ways a zip arrives: JSON `{"name","file",…}` naming a path or URL (eKuiper's way),
 * a multipart upload (fields name/functions/sha256 and a file part), or a raw application/zip body
 * with `?name=` (and optional `?sha256=`, `?functions=`).
 */
async function readInstallBody(req: FastifyRequest, manager: PluginManager): Promise<InstallBody> {
  const query = (req.query ?? {}) as Record<string, string | undefined>;
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
          spooled = path.join(manager.layout.tmp, `upload-${process.pid}-${crypto.randomBytes(6).toString('hex')}.zip`);
          fs.mkdirSync(manager.layout.tmp, { recursive: true });
          await spoolStream(part.file, spooled, { maxBytes: manager.limits.maxZipBytes });
          if (part.file.truncated) throw new StreamplugError('E_ZIP_TOO_BIG', `uploaded zip exceeds ${manager.limits.maxZipBytes} bytes, the limit`);
        } else {
          fields[part.fieldname] = String(part.value);
        }
      }
    } catch (e) {
      cleanup();
      throw e;
    }
    if (!spooled) {
      if (fields.file) return { ...fieldsOf(fields), source: { file: fields.file }, cleanup };
      throw new StreamplugError('E_BAD_REQUEST', 'multipart upload has no file part; expected the plugin zip as a file field');
    }
    return { ...fieldsOf(fields), source: { file: spooled }, origin: 'upload', cleanup };
  }
  const body = req.body as unknown;
  if (body && typeof (body as Readable).pipe === 'function') {
    return {
      name: query.name,
      sha256: query.sha256,
      functions: parseFunctions(query.functions),
      isolation: parseIsolation(query.isolation),
      source: { stream: body as Readable, label: 'upload' },
      cleanup() {},
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
  return {
    name: b.name as string | undefined,
    sha256: b.sha256 as string | undefined,
    functions: parseFunctions(b.functions),
    isolation: parseIsolation(b.isolation),
    source: { file: b.file },
    cleanup() {},
  };
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

  app.get<{ Params: { name: string } }>('/plugins/udfs/:name', async (req) => {
    const u = manager.udf(req.params.name);
    return { name: u.name, plugin: u.plugin };
  });

  app.get<{ Params: { type: string } }>('/plugins/:type', async (req) => manager.list(asType(req.params.type)));

  app.post<{ Params: { type: string } }>('/plugins/:type', async (req, reply) => {
    const type = asType(req.params.type);
    const body = await readInstallBody(req, manager);
    try {
      if (!body.name) throw new StreamplugError('E_BAD_REQUEST', 'the request has no "name"; expected the plugin name (^[A-Za-z0-9_-]+$)');
      const r = await manager.install({ type, name: body.name, source: body.source, functions: body.functions, sha256: body.sha256, origin: body.origin, isolation: body.isolation });
      return reply.code(201).type('text/plain; charset=utf-8').send(r.message);
    } finally {
      body.cleanup();
    }
  });

  app.get<{ Params: { type: string; name: string } }>('/plugins/:type/:name', async (req) =>
    manager.describe(asType(req.params.type), req.params.name),
  );

  app.put<{ Params: { type: string; name: string } }>('/plugins/:type/:name', async (req, reply) => {
    const type = asType(req.params.type);
    const body = await readInstallBody(req, manager);
    try {
      if (body.name && body.name !== req.params.name) {
        throw new StreamplugError('E_BAD_REQUEST', `the body names "${body.name}" but the path names "${req.params.name}"; expected the same plugin`);
      }
      const r = await manager.update({ type, name: req.params.name, source: body.source, functions: body.functions, sha256: body.sha256, origin: body.origin, isolation: body.isolation });
      return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
    } finally {
      body.cleanup();
    }
  });

  app.delete<{ Params: { type: string; name: string }; Querystring: { force?: string } }>('/plugins/:type/:name', async (req, reply) => {
    const force = req.query.force === 'true' || req.query.force === '1';
    const r = await manager.remove(asType(req.params.type), req.params.name, { force });
    return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
  });

  // Lifts a quarantine (after a crash) and loads the plugin; its held-back rules start.
  app.post<{ Params: { type: string; name: string } }>('/plugins/:type/:name/enable', async (req, reply) => {
    const r = await manager.enable(asType(req.params.type), req.params.name);
    return reply.code(200).type('text/plain; charset=utf-8').send(r.message);
  });

  app.post<{ Params: { name: string } }>('/plugins/functions/:name/register', async (req, reply) => {
    const body = (req.body ?? {}) as { functions?: unknown };
    const msg = await manager.registerFunctions(req.params.name, body.functions);
    return reply.code(200).type('text/plain; charset=utf-8').send(msg);
  });
};
