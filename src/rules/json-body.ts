/**
 * JSON request bodies with the position of the first error. Node 20's JSON.parse messages do not
 * say where the text breaks, so a failed parse is re-scanned by a small validator that finds the
 * offset, line and column and what was expected there.
 */
import { StreamplugError } from '../errors.js';

interface Fault {
  offset: number;
  expected: string;
}

/** Returns the first syntax error of `text` as JSON, or undefined when it is valid. */
export function locateJsonError(text: string): Fault | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (expected: string): never => {
    throw { offset: i, expected } satisfies Fault;
  };
  const word = (w: string) => {
    if (text.startsWith(w, i)) i += w.length;
    else fail(`a JSON value (object, array, string, number, true, false or null)`);
  };
  const string = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('a closing "');
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2;
            fail('4 hex digits after \\u');
          }
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else {
          i++;
          fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
        }
      } else if (c < ' ') fail('no raw control character inside a string (escape it)');
      else i++;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m || m[0] === '-' || m[0] === '') fail('a number');
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a property name in double quotes');
        string();
        ws();
        if (text[i] !== ':') fail("':' after the property name");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    if (c === 't') return word('true');
    if (c === 'f') return word('false');
    if (c === 'n') return word('null');
    fail('a JSON value (object, array, string, number, true, false or null)');
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of the body');
    return undefined;
  } catch (e) {
    if (e && typeof e === 'object' && 'offset' in e) return e as Fault;
    throw e;
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Parses a request body (an empty one is undefined); a bad one is E_BAD_REQUEST naming line, column, offset, what was expected and found. */
export function parseJsonBody(text: string): unknown {
  // eKuiper accepts a bodiless request (DELETE, start, stop) that still says content-type JSON, and
  // many HTTP clients send that header on every request: an empty body is no body.
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    const f = locateJsonError(text) ?? { offset: 0, expected: 'valid JSON' };
    const { line, column } = lineColumn(text, f.offset);
    const found = f.offset >= text.length ? 'the end of the body' : JSON.stringify(text.slice(f.offset, f.offset + 12));
    throw new StreamplugError(
      'E_BAD_REQUEST',
      `the request body is not valid JSON: expected ${f.expected} but found ${found} at line ${line}, column ${column}; fix the JSON there`,
      { line, column, offset: f.offset, reason: (e as Error).message },
    );
  }
}

/** Minimal view of a fastify scope, so this module does not depend on fastify's types. */
interface ParserScope {
  removeContentTypeParser(type: string): unknown;
  addContentTypeParser(type: string, opts: { parseAs: 'string' }, fn: (req: unknown, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => void): unknown;
}

/** Replaces a fastify scope's JSON parser with parseJsonBody (errors with positions). */
export function useJsonBodies(scope: ParserScope): void {
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body.toString()));
    } catch (e) {
      done(e as Error);
    }
  });
}
