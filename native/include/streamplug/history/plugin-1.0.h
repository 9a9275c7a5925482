/*
 * streamplug/plugin.h — the contract between the streamplug host and a native plugin.
 *
 * This is the only file a plugin author needs. A plugin is a shared library (`.so`) that includes
 * this header, links nothing of the host (no Node headers, no host symbols) and exports exactly one
 * entry point, `streamplug_plugin_v1`, made by STREAMPLUG_PLUGIN() below. The same `.so` loads in
 * every host whose contract major is 1, whatever its Node version.
 *
 * TRUST MODEL. A plugin runs inside the host process with the host's rights. The host checks the
 * file before mapping it (ELF class, machine, libc, symbol versions, needed libraries, the manifest
 * note below, the contract version) and validates the descriptor after `dlopen`, but nothing stops
 * code that runs inside the plugin — constructors, init, callbacks — from crashing the host. Keep
 * constructors empty; do the work in init and report failure through the host routines.
 *
 * NAMES. Types are `sp_*`; macros `SP_*` / `STREAMPLUG_*`; hooks the plugin implements are fields
 * of the `*_def` structs; routines the host implements are fields of `sp_host_api`.
 *
 * EVOLUTION (read before changing this file).
 *   - Every struct that crosses the boundary begins with `uint32_t size` (sizeof as compiled by the
 *     side that filled it) and is append-only: new fields go at the end, are added only in a new
 *     minor version, and are zero/NULL when absent. Nothing is ever removed, reordered or retyped.
 *   - Whoever reads a struct filled by the other side checks `size` before touching a field
 *     (SP_HAS_FIELD). A newer host reads older plugins; a plugin asks the host for the minor it needs.
 *   - A change that cannot follow these rules bumps the major, and with it the entry point's name
 *     (`streamplug_plugin_v2`), so an old host cannot even find the entry of a new plugin.
 *   - The host refuses a plugin whose major differs or whose minor is newer than the host's.
 *
 * THREADING. Each hook and routine says which thread calls it. "Host thread" means the thread that
 * runs the host's JavaScript; "any thread" means exactly that, concurrently.
 *
 * OWNERSHIP. Pointers the host passes to a hook are borrowed: valid until the hook returns unless
 * stated otherwise. Strings a plugin hands the host (errors, results) are copied by the host.
 * Descriptors and definition tables a plugin returns must stay valid until the library is unloaded
 * (static storage).
 */
#ifndef STREAMPLUG_PLUGIN_H
#define STREAMPLUG_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions and identification
 * ------------------------------------------------------------------------------------------- */

#define STREAMPLUG_CONTRACT_MAJOR 1
#define STREAMPLUG_CONTRACT_MINOR 0

/* First field of every descriptor: 'SPLG'. A descriptor without it is not a streamplug plugin. */
#define STREAMPLUG_MAGIC 0x53504C47u

/* The exported entry point. The major is in the name: see EVOLUTION. */
#define STREAMPLUG_ENTRY_NAME "streamplug_plugin_v1"

/* True when a struct filled by the other side, of `size` bytes, includes FIELD. */
#define SP_HAS_FIELD(ptr, type, field) \
  ((ptr)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---------------------------------------------------------------------------------------------
 * Status and values
 * ------------------------------------------------------------------------------------------- */

/* What every hook returns. On SP_ERROR the hook has called host->set_error() with the reason. */
typedef enum sp_status {
  SP_OK = 0,
  SP_ERROR = 1,      /* failed; the host reports the message set with set_error */
  SP_RETRY = 2       /* failed for now; the host may try the same work again later (sinks) */
} sp_status;

/* Column and argument types. */
typedef enum sp_type {
  SP_TYPE_ANY = 0,     /* argument: any of the types below, as the column arrives */
  SP_TYPE_BOOL = 1,    /* uint8_t, 0 or 1 */
  SP_TYPE_INT64 = 2,   /* int64_t */
  SP_TYPE_FLOAT64 = 3, /* double */
  SP_TYPE_STRING = 4,  /* UTF-8, offsets + data */
  SP_TYPE_BYTES = 5,   /* raw bytes, offsets + data */
  SP_TYPE_LIKE_ARG0 = 0x100 /* result only: the type of argument 0 as called */
} sp_type;

/*
 * A column of `length` values, read-only to the plugin.
 *   Fixed-width types: `values` points at `length` elements of the C type above.
 *   STRING / BYTES:    value i is `data[offsets[i] .. offsets[i+1])`; `offsets` has length+1
 *                      entries; strings are NOT NUL-terminated.
 *   `nulls`: NULL when no value is null; otherwise one byte per row, 1 = null (its value is
 *   unspecified).
 *   `is_constant`: 1 when the argument is a literal in the rule's SQL. The column then still has
 *   `length` rows: the host repeats the value (stride 0 is not used, to keep loops simple).
 * OWNERSHIP: borrowed for the duration of the call.
 */
typedef struct sp_column {
  uint32_t size;
  uint32_t type;            /* sp_type */
  size_t length;
  const void *values;       /* fixed-width types */
  const uint32_t *offsets;  /* STRING / BYTES */
  const char *data;         /* STRING / BYTES */
  const uint8_t *nulls;
  uint32_t is_constant;
} sp_column;

/*
 * The result column of one call, written by the plugin.
 *   Fixed-width types: write `((double *)values)[i]` etc.; the host allocated `length` elements.
 *   STRING / BYTES:    call host->result_set_string() / result_set_bytes() per row.
 *   Null: set `nulls[i] = 1` (the host zeroed `nulls`; it is never NULL).
 * `type` is set by the host (SP_TYPE_LIKE_ARG0 already resolved).
 * OWNERSHIP: host-owned; valid for the duration of the call.
 */
typedef struct sp_result {
  uint32_t size;
  uint32_t type;
  size_t length;
  void *values;
  uint8_t *nulls;
  void *host_reserved;      /* host bookkeeping: do not touch */
} sp_result;

/* Opaque host objects. */
typedef struct sp_ctx sp_ctx;     /* a function instance in one rule: errors, state */

/* ---------------------------------------------------------------------------------------------
 * Host routines: one table handed to the plugin at init, the only way a plugin calls the host
 * (no link-time coupling). Keep the pointer for the life of the library.
 * ------------------------------------------------------------------------------------------- */

typedef enum sp_log_level {
  SP_LOG_DEBUG = 20, SP_LOG_INFO = 30, SP_LOG_WARN = 40, SP_LOG_ERROR = 50
} sp_log_level;

typedef struct sp_host_api {
  uint32_t size;
  uint16_t contract_major;
  uint16_t contract_minor;

  /* ---- contract 1.0 ---- */

  /* Log a line under the plugin's name. `ctx` may be NULL (no rule).
   * THREAD: any thread. The host copies `message`. */
  void (*log)(sp_ctx *ctx, int level, const char *message);

  /* Say why the current hook fails; the hook then returns SP_ERROR. The last call wins.
   * `ctx` is the one the hook received (init receives one too).
   * THREAD: the thread running the hook, during the hook. The host copies `message`. */
  void (*set_error)(sp_ctx *ctx, const char *message);

  /* Memory the host accounts for (shown in plugin status). Same contract as malloc/free.
   * THREAD: any thread. */
  void *(*alloc)(size_t bytes);
  void (*free)(void *ptr);

  /* Per-instance state, kept by the host for one function instance in one rule (eKuiper's
   * ctx.GetState/PutState). Keys are NUL-terminated; values are bytes the host copies.
   * state_get: on return *value points at host memory valid until the next state_put/state_delete
   * of that key or the end of the hook, *length is its size; returns 0 when the key is absent.
   * THREAD: the thread running a hook of this ctx; never concurrently for the same ctx. */
  int (*state_get)(sp_ctx *ctx, const char *key, const void **value, size_t *length);
  sp_status (*state_put)(sp_ctx *ctx, const char *key, const void *value, size_t length);
  void (*state_delete)(sp_ctx *ctx, const char *key);

  /* Set row `row` of a STRING / BYTES result. The host copies the bytes.
   * THREAD: the thread running the call, during the call. */
  sp_status (*result_set_string)(sp_result *result, size_t row, const char *text, size_t length);

  /* The data the plugin's init stored in *plugin_data. THREAD: any thread. */
  void *(*plugin_data)(sp_ctx *ctx);

  /* The rule this ctx belongs to ("" outside a rule). Valid for the ctx's life.
   * THREAD: any thread. */
  const char *(*rule_id)(sp_ctx *ctx);

  /* ---- contract 1.1 and later: append here ---- */
} sp_host_api;

/* ---------------------------------------------------------------------------------------------
 * Functions: called from SQL.
 *
 * One hook, `call`, serves every shape:
 *   SCALAR     one output row per input row. The host calls it once per batch of rows (the hot
 *              path) and, for convenience, with nrows = 1 for a single call.
 *   AGGREGATE  one output row per group: the input rows of group g are
 *              [group_offsets[g], group_offsets[g+1]). A window's groups arrive in one call.
 * A function that keeps state across calls (a running total) uses host->state_*; the host gives
 * each function instance in each rule its own ctx, so two rules never share state.
 * ------------------------------------------------------------------------------------------- */

typedef enum sp_function_kind {
  SP_FUNCTION_SCALAR = 1,
  SP_FUNCTION_AGGREGATE = 2
} sp_function_kind;

/* Argument flags, one per declared argument. */
#define SP_ARG_LITERAL 0x1u  /* must be a literal in the SQL (checked when the rule is created) */

/* Function flags. */
#define SP_FUNCTION_STATEFUL 0x1u       /* uses host->state_*: the host keeps a ctx per rule */
#define SP_FUNCTION_NONDETERMINISTIC 0x2u

typedef struct sp_call {
  uint32_t size;
  sp_ctx *ctx;
  size_t nargs;
  const sp_column *args;        /* nargs columns of nrows rows each */
  size_t nrows;
  size_t ngroups;               /* AGGREGATE: number of groups; SCALAR: equals nrows */
  const uint32_t *group_offsets;/* AGGREGATE: ngroups+1 entries; SCALAR: NULL */
  sp_result *result;            /* ngroups rows (SCALAR: nrows) */
} sp_call;

/* Description of one argument at rule creation, for `validate`. */
typedef struct sp_arg_info {
  uint32_t size;
  uint32_t type;                /* sp_type the expression is known to have, or SP_TYPE_ANY */
  uint32_t is_literal;
  const char *literal_text;     /* the literal's value as text when is_literal, else NULL */
} sp_arg_info;

typedef struct sp_function_def {
  uint32_t size;
  const char *name;             /* SQL name, case-insensitive, unique across loaded plugins */
  uint32_t kind;                /* sp_function_kind */
  uint32_t flags;               /* SP_FUNCTION_* */
  int32_t min_args;
  int32_t max_args;             /* -1: variadic; extra arguments take the last declared type */
  const uint32_t *arg_types;    /* sp_type per declared argument (max(min_args,1) entries) */
  const uint32_t *arg_flags;    /* SP_ARG_* per declared argument, or NULL */
  uint32_t result_type;         /* sp_type, or SP_TYPE_LIKE_ARG0 */

  /* Compute one batch. Return SP_OK, or SP_ERROR after host->set_error(call->ctx, ...): the whole
   * batch fails and the rule reports the message.
   * THREAD: the host thread today; a later host may call from a worker thread. Never
   * concurrently for the same ctx; concurrently for different ctxs, so plugin-global data must be
   * read-only or locked. Do not block. */
  sp_status (*call)(const sp_call *call);

  /* Optional. Called when a rule using the function is created, after the host checked arity,
   * types and SP_ARG_LITERAL. Return SP_ERROR with set_error to refuse the rule.
   * THREAD: host thread. */
  sp_status (*validate)(sp_ctx *ctx, const sp_arg_info *args, size_t nargs);

  /* Optional. Called when a rule's function instance ends (rule stopped or deleted), before its
   * state is dropped. THREAD: host thread. */
  void (*close)(sp_ctx *ctx);
} sp_function_def;

/* ---------------------------------------------------------------------------------------------
 * The descriptor: what the entry point returns (PostgreSQL's magic block, grown up).
 * ------------------------------------------------------------------------------------------- */

typedef struct sp_plugin_descriptor {
  uint32_t magic;               /* STREAMPLUG_MAGIC */
  uint32_t size;                /* sizeof(sp_plugin_descriptor) as the plugin was built */
  uint16_t contract_major;      /* STREAMPLUG_CONTRACT_MAJOR the plugin was built with */
  uint16_t contract_minor;
  uint32_t reserved0;
  const char *name;             /* plugin name, ^[A-Za-z0-9_-]+$ */
  const char *version;          /* plugin version, free text (semver advised) */
  const char *build_compiler;   /* e.g. "gcc 12.2.0" */
  const char *build_arch;       /* "x86_64", "aarch64", … */
  const char *build_libc;       /* "glibc 2.36", "musl", … */

  /* Optional. Called once after load, before any other hook. Store plugin-wide data in
   * *plugin_data (returned by host->plugin_data). Return SP_ERROR with set_error(ctx, …) to
   * refuse the load: deinit is then not called and the library is unloaded.
   * THREAD: host thread. `host` stays valid until deinit returns. */
  sp_status (*init)(const sp_host_api *host, sp_ctx *ctx, void **plugin_data);

  /* Optional. Called once before unload, after every ctx was closed. THREAD: host thread. */
  void (*deinit)(void *plugin_data);

  size_t n_functions;
  const sp_function_def *functions;

  /* ---- contract 1.1 and later: append here (sources, sinks) ---- */
} sp_plugin_descriptor;

typedef const sp_plugin_descriptor *(*sp_entry_fn)(void);

/* ---------------------------------------------------------------------------------------------
 * The manifest note: lets the host read what a file is *without loading it*.
 *
 * An ELF note in section ".note.streamplug" (type SHT_NOTE, so it also lands in a PT_NOTE
 * segment): owner "streamplug", type 1, description a NUL-terminated text of `key=value` lines:
 *     contract=1.0
 *     name=samples
 *     version=1.2.0
 *     extensions=function:echo,function:countPlusOne
 *     arch=x86_64
 *     libc=glibc
 * Unknown keys are ignored by readers. The host refuses a `.so` whose note is missing, and one
 * whose descriptor declares other extensions than the note.
 * ------------------------------------------------------------------------------------------- */

#define STREAMPLUG_NOTE_OWNER "streamplug"
#define STREAMPLUG_NOTE_TYPE_MANIFEST 1u

#define SP_STR_(x) #x
#define SP_STR(x) SP_STR_(x)

#if defined(__x86_64__)
#define SP_BUILD_ARCH "x86_64"
#elif defined(__aarch64__)
#define SP_BUILD_ARCH "aarch64"
#elif defined(__i386__)
#define SP_BUILD_ARCH "ia32"
#elif defined(__arm__)
#define SP_BUILD_ARCH "arm"
#elif defined(__riscv)
#define SP_BUILD_ARCH "riscv64"
#else
#define SP_BUILD_ARCH "unknown"
#endif

#if defined(__GLIBC__)
#define SP_BUILD_LIBC "glibc " SP_STR(__GLIBC__) "." SP_STR(__GLIBC_MINOR__)
#define SP_BUILD_LIBC_FLAVOUR "glibc"
#elif defined(__linux__)
#define SP_BUILD_LIBC "musl"
#define SP_BUILD_LIBC_FLAVOUR "musl"
#else
#define SP_BUILD_LIBC "unknown"
#define SP_BUILD_LIBC_FLAVOUR "unknown"
#endif

#if defined(__clang__)
#define SP_BUILD_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define SP_BUILD_COMPILER "gcc " __VERSION__
#else
#define SP_BUILD_COMPILER "unknown"
#endif

#if defined(__GNUC__)
#define SP_EXPORT __attribute__((visibility("default")))
#define SP_NOTE_ATTR __attribute__((section(".note.streamplug"), used, aligned(4)))
#else
#define SP_EXPORT
#define SP_NOTE_ATTR
#endif

#ifdef __cplusplus
#define SP_EXTERN_C extern "C"
#else
#define SP_EXTERN_C
#endif

/* Round a note description size up to 4 bytes, as the ELF note format requires. */
#define SP_NOTE_PAD4(n) (((n) + 3u) & ~3u)

/* The manifest note alone; STREAMPLUG_PLUGIN emits it for you. `.node` plugins may use it too. */
#define STREAMPLUG_MANIFEST(NAME, VERSION, EXTENSIONS)                                        \
  SP_NOTE_ATTR static const struct {                                                         \
    uint32_t namesz, descsz, type;                                                           \
    char owner[SP_NOTE_PAD4(sizeof(STREAMPLUG_NOTE_OWNER))];                                 \
    char desc[SP_NOTE_PAD4(sizeof(STREAMPLUG_MANIFEST_TEXT_(NAME, VERSION, EXTENSIONS)))];   \
  } streamplug_manifest_note_ = {                                                            \
    (uint32_t)sizeof(STREAMPLUG_NOTE_OWNER),                                                 \
    (uint32_t)sizeof(STREAMPLUG_MANIFEST_TEXT_(NAME, VERSION, EXTENSIONS)),                  \
    STREAMPLUG_NOTE_TYPE_MANIFEST, STREAMPLUG_NOTE_OWNER,                                    \
    STREAMPLUG_MANIFEST_TEXT_(NAME, VERSION, EXTENSIONS)                                     \
  };

#define STREAMPLUG_MANIFEST_TEXT_(NAME, VERSION, EXTENSIONS)                                 \
  "contract=" SP_STR(STREAMPLUG_CONTRACT_MAJOR) "." SP_STR(STREAMPLUG_CONTRACT_MINOR) "\n"    \
  "name=" NAME "\nversion=" VERSION "\nextensions=" EXTENSIONS "\n"                          \
  "arch=" SP_BUILD_ARCH "\nlibc=" SP_BUILD_LIBC_FLAVOUR "\n"

/*
 * STREAMPLUG_PLUGIN(NAME, VERSION, EXTENSIONS, DESCRIBE)
 *   NAME, VERSION  string literals.
 *   EXTENSIONS     string literal listing what the plugin provides, comma-separated
 *                  `function:NAME` entries (later `source:NAME`, `sink:NAME`); written into the
 *                  manifest note and compared with the descriptor at load.
 *   DESCRIBE       `static void DESCRIBE(sp_plugin_descriptor *d)`: fills in init, deinit and
 *                  the extension tables. Everything else is already set.
 * Use it exactly once per library. It defines the entry point and the manifest note.
 *
 *   static const sp_function_def functions[] = { ... };
 *   static void describe(sp_plugin_descriptor *d) { d->functions = functions; d->n_functions = 1; }
 *   STREAMPLUG_PLUGIN("echo", "1.0.0", "function:echo", describe)
 *
 * THREAD: the host calls the entry point once, on the host thread, right after dlopen.
 */
#define STREAMPLUG_PLUGIN(NAME, VERSION, EXTENSIONS, DESCRIBE)                                \
  STREAMPLUG_MANIFEST(NAME, VERSION, EXTENSIONS)                                             \
  SP_EXTERN_C SP_EXPORT const sp_plugin_descriptor *streamplug_plugin_v1(void);              \
  SP_EXTERN_C SP_EXPORT const sp_plugin_descriptor *streamplug_plugin_v1(void) {             \
    static sp_plugin_descriptor d;                                                           \
    static int described = 0;                                                                \
    if (!described) {                                                                        \
      d.magic = STREAMPLUG_MAGIC;                                                            \
      d.size = (uint32_t)sizeof(sp_plugin_descriptor);                                       \
      d.contract_major = STREAMPLUG_CONTRACT_MAJOR;                                          \
      d.contract_minor = STREAMPLUG_CONTRACT_MINOR;                                          \
      d.name = NAME;                                                                         \
      d.version = VERSION;                                                                   \
      d.build_compiler = SP_BUILD_COMPILER;                                                  \
      d.build_arch = SP_BUILD_ARCH;                                                          \
      d.build_libc = SP_BUILD_LIBC;                                                          \
      (void)streamplug_manifest_note_;                                                       \
      DESCRIBE(&d);                                                                          \
      described = 1;                                                                         \
    }                                                                                        \
    return &d;                                                                               \
  }

/* Helpers to fill sp_function_def tables without designated initializers (C++17 lacks them). */
#define SP_FUNCTION_DEF(NAME, KIND, FLAGS, MIN, MAX, ARG_TYPES, ARG_FLAGS, RESULT, CALL, VALIDATE, CLOSE) \
  { (uint32_t)sizeof(sp_function_def), NAME, KIND, FLAGS, MIN, MAX, ARG_TYPES, ARG_FLAGS, RESULT,        \
    CALL, VALIDATE, CLOSE }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* STREAMPLUG_PLUGIN_H */
