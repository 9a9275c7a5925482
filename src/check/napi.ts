/**
 * Reads the Node-API version a module asks for from the machine code of
 * node_api_module_get_api_version_v1, without running it: the function is `return NAPI_VERSION;`,
 * i.e. `mov eax, imm32; ret` on x86_64 and `mov w0, #imm; ret` on aarch64.
 */

/** x86_64: skips endbr64 and a frame-pointer prologue, then expects `mov eax, imm32` (B8 id). */
export function decodeX86_64(code: Buffer): number | undefined {
  let i = 0;
  const at = (...bytes: number[]) => bytes.every((b, k) => code[i + k] === b);
  if (at(0xf3, 0x0f, 0x1e, 0xfa)) i += 4; // endbr64
  if (at(0x55)) i += 1; // push rbp
  if (at(0x48, 0x89, 0xe5)) i += 3; // mov rbp, rsp
  if (code[i] === 0xb8 && i + 5 <= code.length) return code.readInt32LE(i + 1);
  if (at(0x31, 0xc0)) return 0; // xor eax, eax
  return undefined;
}

/** aarch64 bitmask immediate (ORR) for 32-bit registers, or undefined when not encodable. */
function decodeBitMask32(n: number, immr: number, imms: number): number | undefined {
  if (n !== 0) return undefined;
  const combined = ~imms & 0x3f;
  if (combined === 0) return undefined;
  const len = 31 - Math.clz32(combined);
  const esize = 1 << len;
  const levels = esize - 1;
  const s = imms & levels;
  const r = immr & levels;
  if (s === levels) return undefined;
  const ones = 2 ** (s + 1) - 1;
  const mask = esize >= 32 ? 0xffffffff : (1 << esize) - 1;
  let elem = r === 0 ? ones : ((ones >>> r) | (ones << (esize - r))) & mask;
  elem >>>= 0;
  let value = 0;
  for (let p = 0; p < 32; p += esize) value = (value | (elem << p)) >>> 0;
  return value >>> 0;
}

/** aarch64: skips bti/pac hints and a frame record, then folds movz/movn/movk/orr into w0 until ret. */
export function decodeAarch64(code: Buffer): number | undefined {
  let value: number | undefined;
  for (let i = 0; i + 4 <= code.length && i < 64; i += 4) {
    const w = code.readUInt32LE(i);
    if ((w & 0xfffff01f) === 0xd503201f) continue; // hint (nop, bti, paciasp, …)
    if (w === 0xa9bf7bfd || w === 0x910003fd) continue; // stp x29, x30, [sp, #-16]! / mov x29, sp
    if (w === 0xd65f03c0) break; // ret
    const rd = w & 0x1f;
    const hw = (w >>> 21) & 3;
    const imm16 = (w >>> 5) & 0xffff;
    if (rd !== 0) {
      if (value !== undefined) break;
      continue;
    }
    if ((w & 0x7f800000) === 0x52800000) value = (imm16 * 2 ** (16 * hw)) >>> 0; // movz
    else if ((w & 0x7f800000) === 0x12800000) value = ~(imm16 * 2 ** (16 * hw)) >>> 0; // movn
    else if ((w & 0x7f800000) === 0x72800000 && value !== undefined) {
      const shift = 16 * hw;
      value = ((value & ~(0xffff << shift)) | (imm16 << shift)) >>> 0; // movk
    } else if ((w & 0x7f8003e0) === 0x320003e0) {
      value = decodeBitMask32((w >>> 22) & 1, (w >>> 16) & 0x3f, (w >>> 10) & 0x3f); // orr w0, wzr, #imm
    } else break;
  }
  return value === undefined ? undefined : value | 0;
}

/** NAPI_VERSION_EXPERIMENTAL: what a module built with NAPI_EXPERIMENTAL asks for. */
export const NAPI_VERSION_EXPERIMENTAL = 2147483647;
