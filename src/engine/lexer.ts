/**
 * Hand-written SQL lexer. Every token keeps its position (1-based line/column, 0-based offset) so the
 * parser can say exactly where a statement went wrong.
 */
import { StreamplugError } from '../errors.js';

export type TokenKind = 'ident' | 'qident' | 'number' | 'string' | 'op' | 'eof';

export interface Pos {
  line: number;
  column: number;
  offset: number;
}

export interface Token extends Pos {
  kind: TokenKind;
  /** ident: as written; qident: backquoted name without quotes; string: unescaped; op: the symbol. */
  text: string;
  /** Upper-cased text for identifiers, so keywords compare case-insensitively. */
  upper: string;
  end: number;
}

const OPS = ['->', '<=', '>=', '<>', '!=', '||', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',', '.', '[', ']', ':', ';', '&', '|', '^'];

export function syntaxError(message: string, pos: Pos): StreamplugError {
  return new StreamplugError(
    'E_SQL_SYNTAX',
    `${message} at line ${pos.line}, column ${pos.column}; fix the SQL there`,
    { line: pos.line, column: pos.column, offset: pos.offset },
  );
}

export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of input';
    case 'string':
      return `string "${t.text}"`;
    case 'number':
      return `number ${t.text}`;
    case 'qident':
      return `\`${t.text}\``;
    default:
      return `'${t.text}'`;
  }
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const pos = (at: number): Pos => ({ line, column: at - lineStart + 1, offset: at });
  const push = (kind: TokenKind, text: string, start: number, startPos: Pos) =>
    out.push({ kind, text, upper: kind === 'ident' ? text.toUpperCase() : text, ...startPos, end: i, offset: start });

  while (i < src.length) {
    const c = src[i];
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    // comments: -- to end of line, /* … */
    if (c === '-' && src[i + 1] === '-') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const p = pos(i);
      const close = src.indexOf('*/', i + 2);
      if (close < 0) throw syntaxError('unterminated comment: found /* without */', p);
      for (let k = i; k < close; k++) if (src[k] === '\n') {
        line++;
        lineStart = k + 1;
      }
      i = close + 2;
      continue;
    }
    const start = i;
    const startPos = pos(i);
    if (/[A-Za-z_]/.test(c)) {
      while (i < src.length && /[A-Za-z0-9_]/.test(src[i])) i++;
      push('ident', src.slice(start, i), start, startPos);
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      while (i < src.length && /[0-9]/.test(src[i])) i++;
      if (src[i] === '.' && /[0-9]/.test(src[i + 1] ?? '')) {
        i++;
        while (i < src.length && /[0-9]/.test(src[i])) i++;
      }
      if ((src[i] === 'e' || src[i] === 'E') && /[-+0-9]/.test(src[i + 1] ?? '')) {
        i++;
        if (src[i] === '+' || src[i] === '-') i++;
        if (!/[0-9]/.test(src[i] ?? '')) throw syntaxError('malformed number exponent: expected digits after e', pos(i));
        while (i < src.length && /[0-9]/.test(src[i])) i++;
      }
      if (/[A-Za-z_]/.test(src[i] ?? '')) throw syntaxError(`malformed number: found '${src.slice(start, i + 1)}', expected digits only`, startPos);
      push('number', src.slice(start, i), start, startPos);
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      i++;
      let text = '';
      for (;;) {
        if (i >= src.length) {
          const what = c === '`' ? 'quoted identifier' : 'string';
          throw syntaxError(`unterminated ${what}: expected closing ${c}`, startPos);
        }
        const d = src[i];
        if (d === '\\' && c !== '`' && i + 1 < src.length) {
          const e = src[i + 1];
          text += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          i += 2;
          continue;
        }
        if (d === c) {
          if (src[i + 1] === c) {
            text += c; // doubled quote escapes itself
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (d === '\n') {
          line++;
          lineStart = i + 1;
        }
        text += d;
        i++;
      }
      push(c === '`' ? 'qident' : 'string', text, start, startPos);
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw syntaxError(`unexpected character '${c}'`, startPos);
    i += op.length;
    push('op', op, start, startPos);
  }
  out.push({ kind: 'eof', text: '', upper: '', ...pos(i), end: i });
  return out;
}
