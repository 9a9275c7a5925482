/** Human names for ELF numbers, and what a non-ELF file probably is. */

const MACHINES: Record<number, [string, string]> = {
  3: ['i386', 'EM_386'],
  8: ['mips', 'EM_MIPS'],
  20: ['ppc', 'EM_PPC'],
  21: ['ppc64', 'EM_PPC64'],
  22: ['s390x', 'EM_S390'],
  40: ['arm', 'EM_ARM'],
  43: ['sparc64', 'EM_SPARCV9'],
  50: ['ia64', 'EM_IA_64'],
  62: ['x86_64', 'EM_X86_64'],
  183: ['aarch64', 'EM_AARCH64'],
  243: ['riscv', 'EM_RISCV'],
  258: ['loongarch', 'EM_LOONGARCH'],
};

/** process.arch -> [e_machine, ELF class 64-bit?] */
const NODE_ARCH: Record<string, [number, boolean]> = {
  x64: [62, true],
  arm64: [183, true],
  ia32: [3, false],
  arm: [40, false],
  riscv64: [243, true],
  ppc64: [21, true],
  s390x: [22, true],
  loong64: [258, true],
  mips: [8, false],
  mipsel: [8, false],
  mips64el: [8, true],
};

export function machineName(machine: number): string {
  const m = MACHINES[machine];
  return m ? `${m[0]} (${m[1]})` : `unknown machine ${machine} (e_machine)`;
}

export function hostMachine(arch: string): { machine: number; is64: boolean } | undefined {
  const m = NODE_ARCH[arch];
  return m ? { machine: m[0], is64: m[1] } : undefined;
}

const OSABIS: Record<number, string> = {
  0: 'System V (ELFOSABI_SYSV)',
  1: 'HP-UX (ELFOSABI_HPUX)',
  2: 'NetBSD (ELFOSABI_NETBSD)',
  3: 'GNU/Linux (ELFOSABI_GNU)',
  6: 'Solaris (ELFOSABI_SOLARIS)',
  7: 'AIX (ELFOSABI_AIX)',
  8: 'IRIX (ELFOSABI_IRIX)',
  9: 'FreeBSD (ELFOSABI_FREEBSD)',
  10: 'Tru64 (ELFOSABI_TRU64)',
  12: 'OpenBSD (ELFOSABI_OPENBSD)',
  97: 'ARM (ELFOSABI_ARM)',
  255: 'standalone (ELFOSABI_STANDALONE)',
};

export function osabiName(osabi: number): string {
  return OSABIS[osabi] ? `${OSABIS[osabi]} = ${osabi}` : `unknown OS ABI ${osabi} (EI_OSABI)`;
}

export function elfTypeName(type: number): string {
  return (
    { 1: 'a relocatable object (ET_REL, a .o file)', 2: 'an executable (ET_EXEC)', 3: 'a shared object (ET_DYN)', 4: 'a core dump (ET_CORE)' }[
      type
    ] ?? `an ELF file of unknown type ${type}`
  );
}

/** What a file that is not ELF looks like, from its first bytes. */
export function sniff(head: Buffer): string {
  const u32be = head.length >= 4 ? head.readUInt32BE(0) : -1;
  if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe].includes(u32be)) return 'a Mach-O binary (macOS)';
  if (u32be === 0xcafebabe) return 'a Mach-O universal binary (macOS) or a Java class file';
  if (head[0] === 0x4d && head[1] === 0x5a) return 'a Windows PE file (DLL/EXE)';
  if (head.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) return 'a zip archive';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'a gzip archive';
  if (head.subarray(0, 8).toString('latin1') === '!<arch>\n') return 'a static library (ar archive, .a)';
  if (head.subarray(0, 4).equals(Buffer.from([0, 0x61, 0x73, 0x6d]))) return 'a WebAssembly module';
  if (head[0] === 0x23 && head[1] === 0x21) return `a script (${JSON.stringify(firstLine(head))})`;
  if (isText(head)) return `a text file (starting ${JSON.stringify(firstLine(head))})`;
  return `unrecognised data (first bytes ${head.subarray(0, 8).toString('hex')})`;
}

function firstLine(head: Buffer): string {
  const line = head.toString('utf8').split('\n')[0];
  return line.length > 40 ? `${line.slice(0, 40)}…` : line;
}

function isText(head: Buffer): boolean {
  const sample = head.subarray(0, 512);
  if (sample.length === 0) return false;
  for (const b of sample) if (b < 0x09 || (b > 0x0d && b < 0x20) || b === 0x7f) return false;
  // A multi-byte character cut by the 512-byte sample shows up as one trailing U+FFFD: allow it.
  return !sample.toString('utf8').replace(/\ufffd$/, '').includes('\ufffd');
}
