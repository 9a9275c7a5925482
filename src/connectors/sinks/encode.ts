/** The bytes a text-oriented sink sends for one message: the rendered template, else JSON. */
import { toJson } from '../template.js';
import type { SinkMessage } from '../types.js';

export function messageText(msg: SinkMessage): string {
  return msg.text ?? toJson(msg.data);
}
