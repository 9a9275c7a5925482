/**
 * A defensive, read-only ELF reader (32/64-bit, either byte order) for the pre-load check.
 * Every read is bounds-checked: an offset past the end throws ElfTruncated, an inconsistent
 * structure throws ElfMalformed. Nothing here ever maps or executes the file.
 */

export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;

export const SHT_NOBITS = 8;
export const SHT_NOTE = 7;
export const SHT_DYNSYM = 11;

export const DT_NEEDED = 1;
export const DT_HASH = 4;
export const DT_STRTAB = 5;
export const DT_SYMTAB = 6;
export const DT_STRSZ = 10;
export const DT_SYMENT = 11;
export const DT_SONAME = 14;
export const DT_RPATH = 15;
export const DT_RUNPATH = 29;
export const DT_GNU_HASH = 0x6ffffef5;
export const DT_FLAGS_1 = 0x6ffffffb;
export const DT_VERDEF = 0x6ffffffc;
export const DT_VERDEFNUM = 0x6ffffffd;
export const DT_VERNEED = 0x6ffffffe;
export const DT_VERNEEDNUM = 0x6fffffff;
export const DF_1_PIE = 0x08000000;
export const DF_1_NODELETE = 0x00000008;

export const PF_X = 1;

export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_GNU_IFUNC = 10;

export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STB_GNU_UNIQUE = 10;

/** Caps on counts read from the file, so a corrupt count cannot make a loop run for ever. */
const MAX_ITEMS = 1_000_000;

/** An offset or size points past the end of the file: the file was cut short. */
export class ElfTruncated extends Error {
  constructor(
    readonly what: string,
    readonly end: number,
    readonly fileSize: number,
  ) {
    super(`${what} ends at byte ${end} but the file has ${fileSize} bytes`);
  }
}

/** The structures contradict each other (bad entry size, address outside every segment, …). */
export class ElfMalformed extends Error {}

export interface ElfIdent {
  is64: boolean;
  littleEndian: boolean;
  elfClass: number; // EI_CLASS
  data: number; // EI_DATA
  osabi: number; // EI_OSABI
}

export interface ProgramHeader {
  index: number;
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface SectionHeader {
  index: number;
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface DynamicSymbol {
  name: string;
  bind: number;
  type: number;
  visibility: number;
  shndx: number;
  value: number;
  size: number;
  /** Defined in this file (not an import). */
  defined: boolean;
}

export interface VersionNeed {
  file: string;
  versions: string[];
}

export interface ElfNote {
  owner: string;
  type: number;
  desc: Buffer;
}

/** Bounds-checked integer reads in the file's class and byte order. */
class Reader {
  constructor(
    readonly buf: Buffer,
    readonly is64: boolean,
    readonly le: boolean,
  ) {}

  need(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new ElfMalformed(`${what} has an impossible offset or size`);
    }
    if (offset + length > this.buf.length) throw new ElfTruncated(what, offset + length, this.buf.length);
  }
  u8(o: number, what: string): number {
    this.need(o, 1, what);
    return this.buf[o];
  }
  u16(o: number, what: string): number {
    this.need(o, 2, what);
    return this.le ? this.buf.readUInt16LE(o) : this.buf.readUInt16BE(o);
  }
  u32(o: number, what: string): number {
    this.need(o, 4, what);
    return this.le ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o);
  }
  u64(o: number, what: string): number {
    this.need(o, 8, what);
    const v = this.le ? this.buf.readBigUInt64LE(o) : this.buf.readBigUInt64BE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfMalformed(`${what} holds an impossible value 0x${v.toString(16)}`);
    return Number(v);
  }
  /** A 64-bit signed value (d_tag) folded into a safe number; huge tags become -1 (ignored). */
  s64tag(o: number, what: string): number {
    this.need(o, 8, what);
    const v = this.le ? this.buf.readBigInt64LE(o) : this.buf.readBigInt64BE(o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) || v < 0n ? -1 : Number(v);
  }
  /** Like word(), but a value past 2^53 comes back unsafe instead of throwing (need() rejects it). */
  wordLoose(o: number, what: string): number {
    if (!this.is64) return this.u32(o, what);
    this.need(o, 8, what);
    return Number(this.le ? this.buf.readBigUInt64LE(o) : this.buf.readBigUInt64BE(o));
  }
  word(o: number, what: string): number {
    return this.is64 ? this.u64(o, what) : this.u32(o, what);
  }
  /** NUL-terminated string starting at `o`, which must end before `limit`. */
  cstr(o: number, limit: number, what: string): string {
    const end = Math.min(limit, this.buf.length);
    if (o < 0 || o >= end) {
      if (o >= this.buf.length) throw new ElfTruncated(what, o + 1, this.buf.length);
      throw new ElfMalformed(`${what} points outside its string table`);
    }
    const nul = this.buf.indexOf(0, o);
    if (nul < 0 || nul >= end) {
      if (end === this.buf.length && limit > this.buf.length) throw new ElfTruncated(what, limit, this.buf.length);
      throw new ElfMalformed(`${what} is not NUL-terminated inside its string table`);
    }
    return this.buf.toString('latin1', o, nul);
  }
}

/** Reads e_ident; returns undefined when the file is not ELF. Throws ElfTruncated when the ident is cut. */
export function readIdent(buf: Buffer): ElfIdent | undefined {
  if (buf.length < 4 || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) return undefined;
  if (buf.length < 16) throw new ElfTruncated('the ELF identification (e_ident)', 16, buf.length);
  return { elfClass: buf[4], data: buf[5], is64: buf[4] === 2, littleEndian: buf[5] !== 2, osabi: buf[7] };
}

/** The parsed file. Construction reads only the ELF header; the rest is read on demand. */
export class ElfFile {
  readonly r: Reader;
  readonly type: number;
  readonly machine: number;
  readonly phoff: number;
  readonly phentsize: number;
  readonly phnum: number;
  readonly shoff: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
  private _phdrs?: ProgramHeader[];
  private _shdrs?: SectionHeader[];
  private _dynamic?: Map<number, number[]>;
  private _dynsyms?: DynamicSymbol[];

  constructor(
    readonly buf: Buffer,
    readonly ident: ElfIdent,
  ) {
    if (ident.elfClass !== 1 && ident.elfClass !== 2) throw new ElfMalformed(`invalid ELF class ${ident.elfClass}`);
    if (ident.data !== 1 && ident.data !== 2) throw new ElfMalformed(`invalid ELF byte order ${ident.data}`);
    const r = (this.r = new Reader(buf, ident.is64, ident.littleEndian));
    const ehsize = ident.is64 ? 64 : 52;
    r.need(0, ehsize, 'the ELF header');
    const w = ident.is64 ? 8 : 4;
    this.type = r.u16(16, 'e_type');
    this.machine = r.u16(18, 'e_machine');
    // Offsets are range-checked when used, so a wrong byte order still gets its own verdict first.
    this.phoff = r.wordLoose(24 + w, 'e_phoff');
    this.shoff = r.wordLoose(24 + 2 * w, 'e_shoff');
    const p = 24 + 3 * w + 4 + 2; // after e_flags and e_ehsize
    this.phentsize = r.u16(p, 'e_phentsize');
    this.phnum = r.u16(p + 2, 'e_phnum');
    this.shentsize = r.u16(p + 4, 'e_shentsize');
    this.shnum = r.u16(p + 6, 'e_shnum');
    this.shstrndx = r.u16(p + 8, 'e_shstrndx');
  }

  get programHeaders(): ProgramHeader[] {
    if (this._phdrs) return this._phdrs;
    const { r } = this;
    const is64 = this.ident.is64;
    const minSize = is64 ? 56 : 32;
    if (this.phnum > 0 && this.phentsize < minSize) throw new ElfMalformed(`e_phentsize ${this.phentsize} is smaller than ${minSize}`);
    r.need(this.phoff, this.phnum * this.phentsize, 'the program header table');
    const out: ProgramHeader[] = [];
    for (let i = 0; i < this.phnum; i++) {
      const o = this.phoff + i * this.phentsize;
      const what = `program header ${i}`;
      out.push(
        is64
          ? {
              index: i,
              type: r.u32(o, what),
              flags: r.u32(o + 4, what),
              offset: r.u64(o + 8, what),
              vaddr: r.u64(o + 16, what),
              filesz: r.u64(o + 32, what),
              memsz: r.u64(o + 40, what),
              align: r.u64(o + 48, what),
            }
          : {
              index: i,
              type: r.u32(o, what),
              offset: r.u32(o + 4, what),
              vaddr: r.u32(o + 8, what),
              filesz: r.u32(o + 16, what),
              memsz: r.u32(o + 20, what),
              flags: r.u32(o + 24, what),
              align: r.u32(o + 28, what),
            },
      );
    }
    return (this._phdrs = out);
  }

  get sectionHeaders(): SectionHeader[] {
    if (this._shdrs) return this._shdrs;
    const { r } = this;
    const is64 = this.ident.is64;
    if (this.shoff === 0 || this.shnum === 0) return (this._shdrs = []);
    const minSize = is64 ? 64 : 40;
    if (this.shentsize < minSize) throw new ElfMalformed(`e_shentsize ${this.shentsize} is smaller than ${minSize}`);
    r.need(this.shoff, this.shnum * this.shentsize, 'the section header table');
    const raw: (SectionHeader & { nameOff: number })[] = [];
    for (let i = 0; i < this.shnum; i++) {
      const o = this.shoff + i * this.shentsize;
      const what = `section header ${i}`;
      const w = is64 ? 8 : 4;
      raw.push({
        index: i,
        name: '',
        nameOff: r.u32(o, what),
        type: r.u32(o + 4, what),
        addr: r.word(o + 8 + w, what),
        offset: r.word(o + 8 + 2 * w, what),
        size: r.word(o + 8 + 3 * w, what),
        link: r.u32(o + 8 + 4 * w, what),
        entsize: r.word(o + 16 + 5 * w, what),
      });
    }
    const names = raw[this.shstrndx];
    for (const s of raw) {
      if (names && names.type !== SHT_NOBITS && s.nameOff < names.size) {
        r.need(names.offset, names.size, 'the section name table');
        s.name = r.cstr(names.offset + s.nameOff, names.offset + names.size, `the name of section ${s.index}`);
      }
    }
    return (this._shdrs = raw.map(({ nameOff: _n, ...s }) => s));
  }

  /** The first segment of a type, if any. */
  segment(type: number): ProgramHeader | undefined {
    return this.programHeaders.find((p) => p.type === type);
  }

  /** File offset of virtual address `vaddr` (through the PT_LOAD segments). */
  offsetOf(vaddr: number, what: string): number {
    for (const p of this.programHeaders) {
      if (p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) return p.offset + (vaddr - p.vaddr);
    }
    throw new ElfMalformed(`${what} (address 0x${vaddr.toString(16)}) lies outside every loadable segment`);
  }

  /** Bytes available in the file from `vaddr` to the end of its PT_LOAD segment. */
  bytesAt(vaddr: number, max: number, what: string): Buffer {
    for (const p of this.programHeaders) {
      if (p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz) {
        const off = p.offset + (vaddr - p.vaddr);
        const len = Math.min(max, p.offset + p.filesz - off);
        this.r.need(off, len, what);
        return this.buf.subarray(off, off + len);
      }
    }
    throw new ElfMalformed(`${what} (address 0x${vaddr.toString(16)}) lies outside every loadable segment`);
  }

  get interpreter(): string | undefined {
    const p = this.segment(PT_INTERP);
    if (!p) return undefined;
    this.r.need(p.offset, p.filesz, 'the PT_INTERP segment');
    return this.buf.toString('latin1', p.offset, p.offset + p.filesz).replace(/\0.*$/s, '');
  }

  /** DT_* tag -> values, in file order (DT_NEEDED repeats). */
  get dynamic(): Map<number, number[]> {
    if (this._dynamic) return this._dynamic;
    const out = new Map<number, number[]>();
    const p = this.segment(PT_DYNAMIC);
    if (p) {
      const { r } = this;
      r.need(p.offset, p.filesz, 'the dynamic section (PT_DYNAMIC)');
      const entsize = this.ident.is64 ? 16 : 8;
      const count = Math.floor(p.filesz / entsize);
      for (let i = 0; i < count; i++) {
        const o = p.offset + i * entsize;
        const tag = this.ident.is64 ? r.s64tag(o, 'a dynamic entry') : r.u32(o, 'a dynamic entry');
        if (tag === 0) break; // DT_NULL
        const val = this.ident.is64 ? r.u64(o + 8, 'a dynamic entry') : r.u32(o + 4, 'a dynamic entry');
        const list = out.get(tag);
        if (list) list.push(val);
        else out.set(tag, [val]);
      }
    }
    return (this._dynamic = out);
  }

  dyn(tag: number): number | undefined {
    return this.dynamic.get(tag)?.[0];
  }

  /** The dynamic string table: [file offset, end offset]. */
  private dynstr(): [number, number] {
    const addr = this.dyn(DT_STRTAB);
    const size = this.dyn(DT_STRSZ);
    if (addr === undefined || size === undefined) throw new ElfMalformed('the dynamic section has no DT_STRTAB/DT_STRSZ');
    const off = this.offsetOf(addr, 'DT_STRTAB');
    this.r.need(off, size, 'the dynamic string table (.dynstr)');
    return [off, off + size];
  }

  dynString(index: number, what: string): string {
    const [start, end] = this.dynstr();
    if (index >= end - start) throw new ElfMalformed(`${what} points outside the dynamic string table`);
    return this.r.cstr(start + index, end, what);
  }

  get needed(): string[] {
    return (this.dynamic.get(DT_NEEDED) ?? []).map((i) => this.dynString(i, 'a DT_NEEDED name'));
  }

  /** Directories from DT_RPATH / DT_RUNPATH, unexpanded. */
  searchPath(tag: typeof DT_RPATH | typeof DT_RUNPATH): string[] | undefined {
    const i = this.dyn(tag);
    if (i === undefined) return undefined;
    return this.dynString(i, tag === DT_RPATH ? 'DT_RPATH' : 'DT_RUNPATH')
      .split(':')
      .filter((d) => d !== '');
  }

  /** Linked with -z nodelete: the loader never unmaps it. */
  get isNodelete(): boolean {
    return ((this.dyn(DT_FLAGS_1) ?? 0) & DF_1_NODELETE) !== 0;
  }

  /** The PT_LOAD segment holding virtual address `vaddr`, if any. */
  loadSegmentAt(vaddr: number): ProgramHeader | undefined {
    return this.programHeaders.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.memsz);
  }

  get isPie(): boolean {
    return ((this.dyn(DT_FLAGS_1) ?? 0) & DF_1_PIE) !== 0;
  }

  /** Number of .dynsym entries: from the section header when present, else DT_HASH / DT_GNU_HASH. */
  private dynsymCount(symOff: number, entsize: number): number {
    const sec = this.sectionHeaders.find((s) => s.type === SHT_DYNSYM && s.offset === symOff);
    if (sec && sec.size > 0) return Math.floor(sec.size / entsize);
    const { r } = this;
    const hash = this.dyn(DT_HASH);
    if (hash !== undefined) return r.u32(this.offsetOf(hash, 'DT_HASH') + 4, 'DT_HASH nchain');
    const gnu = this.dyn(DT_GNU_HASH);
    if (gnu === undefined) return 0;
    const o = this.offsetOf(gnu, 'DT_GNU_HASH');
    const nbuckets = r.u32(o, 'DT_GNU_HASH');
    const symoffset = r.u32(o + 4, 'DT_GNU_HASH');
    const bloomSize = r.u32(o + 8, 'DT_GNU_HASH');
    if (nbuckets > MAX_ITEMS || bloomSize > MAX_ITEMS) throw new ElfMalformed('DT_GNU_HASH has impossible sizes');
    const buckets = o + 16 + bloomSize * (this.ident.is64 ? 8 : 4);
    let last = 0;
    for (let i = 0; i < nbuckets; i++) last = Math.max(last, r.u32(buckets + i * 4, 'the DT_GNU_HASH buckets'));
    if (last < symoffset) return symoffset;
    const chains = buckets + nbuckets * 4;
    for (let n = 0; n < MAX_ITEMS; n++, last++) {
      if (r.u32(chains + (last - symoffset) * 4, 'the DT_GNU_HASH chains') & 1) return last + 1;
    }
    throw new ElfMalformed('DT_GNU_HASH chain never ends');
  }

  get dynamicSymbols(): DynamicSymbol[] {
    if (this._dynsyms) return this._dynsyms;
    const addr = this.dyn(DT_SYMTAB);
    if (addr === undefined) return (this._dynsyms = []);
    const { r } = this;
    const is64 = this.ident.is64;
    const entsize = this.dyn(DT_SYMENT) ?? (is64 ? 24 : 16);
    if (entsize < (is64 ? 24 : 16)) throw new ElfMalformed(`DT_SYMENT ${entsize} is too small`);
    const off = this.offsetOf(addr, 'DT_SYMTAB');
    const count = this.dynsymCount(off, entsize);
    if (count > MAX_ITEMS) throw new ElfMalformed(`${count} dynamic symbols is not plausible`);
    r.need(off, count * entsize, 'the dynamic symbol table (.dynsym)');
    const out: DynamicSymbol[] = [];
    for (let i = 1; i < count; i++) {
      const o = off + i * entsize;
      const what = `dynamic symbol ${i}`;
      const nameIdx = r.u32(o, what);
      const info = is64 ? r.u8(o + 4, what) : r.u8(o + 12, what);
      const other = is64 ? r.u8(o + 5, what) : r.u8(o + 13, what);
      const shndx = is64 ? r.u16(o + 6, what) : r.u16(o + 14, what);
      out.push({
        name: this.dynString(nameIdx, `the name of ${what}`),
        bind: info >> 4,
        type: info & 0xf,
        visibility: other & 3,
        shndx,
        value: is64 ? r.u64(o + 8, what) : r.u32(o + 4, what),
        size: is64 ? r.u64(o + 16, what) : r.u32(o + 8, what),
        defined: shndx !== 0,
      });
    }
    return (this._dynsyms = out);
  }

  /** Symbols another object can bind to: defined, global/weak/unique, default or protected visibility. */
  get exports(): DynamicSymbol[] {
    return this.dynamicSymbols.filter(
      (s) =>
        s.defined &&
        (s.bind === STB_GLOBAL || s.bind === STB_WEAK || s.bind === STB_GNU_UNIQUE) &&
        (s.visibility === 0 || s.visibility === 3),
    );
  }

  /** .gnu.version_r: which versions of which library the file needs. */
  get versionNeeds(): VersionNeed[] {
    const addr = this.dyn(DT_VERNEED);
    if (addr === undefined) return [];
    const { r } = this;
    const num = this.dyn(DT_VERNEEDNUM) ?? 0;
    if (num > 10_000) throw new ElfMalformed(`DT_VERNEEDNUM ${num} is not plausible`);
    const out: VersionNeed[] = [];
    let vn = this.offsetOf(addr, 'DT_VERNEED');
    for (let i = 0; i < num; i++) {
      const what = '.gnu.version_r';
      const cnt = r.u16(vn + 2, what);
      const need: VersionNeed = { file: this.dynString(r.u32(vn + 4, what), `${what} file name`), versions: [] };
      let aux = vn + r.u32(vn + 8, what);
      for (let j = 0; j < cnt && j < 10_000; j++) {
        need.versions.push(this.dynString(r.u32(aux + 8, what), `${what} version name`));
        const next = r.u32(aux + 12, what);
        if (next === 0) break;
        aux += next;
      }
      out.push(need);
      const next = r.u32(vn + 12, what);
      if (next === 0) break;
      vn += next;
    }
    return out;
  }

  /** .gnu.version_d: the versions this file defines (GLIBCXX_3.4.30, …), base name excluded. */
  get versionDefinitions(): string[] {
    const addr = this.dyn(DT_VERDEF);
    if (addr === undefined) return [];
    const { r } = this;
    const num = this.dyn(DT_VERDEFNUM) ?? 0;
    if (num > 10_000) throw new ElfMalformed(`DT_VERDEFNUM ${num} is not plausible`);
    const out: string[] = [];
    let vd = this.offsetOf(addr, 'DT_VERDEF');
    for (let i = 0; i < num; i++) {
      const what = '.gnu.version_d';
      const flags = r.u16(vd + 2, what);
      const aux = vd + r.u32(vd + 12, what);
      if ((flags & 1) === 0) out.push(this.dynString(r.u32(aux, what), `${what} version name`));
      const next = r.u32(vd + 16, what);
      if (next === 0) break;
      vd += next;
    }
    return out;
  }

  /** Notes from PT_NOTE segments (a note section outside every PT_NOTE segment is not read). */
  get notes(): ElfNote[] {
    const areas: { offset: number; size: number; align: number; what: string }[] = this.programHeaders
      .filter((p) => p.type === PT_NOTE)
      .map((p) => ({ offset: p.offset, size: p.filesz, align: p.align === 8 ? 8 : 4, what: `PT_NOTE segment ${p.index}` }));
    // PT_NOTE segments only, as the loader reads the mapped file (plugin.h, GRAMMAR).
    return areas.flatMap((a) => this.readNotes(a.offset, a.size, a.align, a.what));
  }

  private readNotes(offset: number, size: number, align: number, what: string): ElfNote[] {
    const { r } = this;
    r.need(offset, size, what);
    const pad = (n: number) => Math.ceil(n / align) * align;
    const out: ElfNote[] = [];
    let o = offset;
    const end = offset + size;
    while (o + 12 <= end && out.length < 10_000) {
      const namesz = r.u32(o, what);
      const descsz = r.u32(o + 4, what);
      const type = r.u32(o + 8, what);
      const nameAt = o + 12;
      // Padding is relative to the area's start: with 8-byte alignment the 12-byte header counts.
      const descAt = offset + pad(nameAt + namesz - offset);
      if (namesz > size || descsz > size || descAt + descsz > end) throw new ElfMalformed(`a note in ${what} runs past its end`);
      const owner = this.buf.toString('latin1', nameAt, nameAt + namesz).replace(/\0+$/, '');
      out.push({ owner, type, desc: this.buf.subarray(descAt, descAt + descsz) });
      o = offset + pad(descAt + descsz - offset);
    }
    return out;
  }
}

/** Reads just enough of a (library) file to tell its class and machine; undefined when not ELF. */
export function elfClassAndMachine(head: Buffer): { is64: boolean; machine: number } | undefined {
  if (head.length < 20 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return undefined;
  const le = head[5] !== 2;
  return { is64: head[4] === 2, machine: le ? head.readUInt16LE(18) : head.readUInt16BE(18) };
}
