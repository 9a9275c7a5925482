/*
 * streamplug/plugin.h — the contract between the streamplug host and a native plugin.
 *
 * This is the only file a plugin author needs. A plugin is a shared library (`.so`) that includes
 * this header, links nothing of the host (no Node headers, no host symbols) and exports exactly one
 * entry point, `streamplug_plugin_v1`, made by STREAMPLUG_PLUGIN() below. The same `.so` loads in
 * every host whose contract major is 1, whatever its Node version.
 *
 * TRUST MODEL. Installed with isolation "in-process" (the default) a plugin runs inside the host
 * process with the host's rights, at the cost of one function call per batch. The host checks the
 * file before mapping it (ELF class, machine, libc, symbol versions, needed libraries, the manifest
 * note below, the contract version) and validates the descriptor after `dlopen`, but code that runs
 * inside the plugin — constructors, init, hooks — can still crash the host. What the host does
 * about it, in-process:
 *   - it names the culprit: before entering plugin code it records plugin, hook and rule in a
 *     memory-mapped crash journal; a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or
 *     exit() inside plugin code prints one line naming them and the process ends as it would have
 *     (same signal, same core dump);
 *   - it never crash-loops: the next start quarantines that plugin (not loaded, the rules using it
 *     stay stopped, everything else starts) until an operator enables or updates it;
 *   - a C++ exception escaping a hook fails that call with SP_ERROR ("plugin X threw a C++
 *     exception in hook H: …"). HOOKS MUST NOT THROW all the same: an exception crossing C frames
 *     built without unwind tables still ends in std::terminate (the CMake helper builds C with
 *     -fexceptions for that reason);
 *   - dlopen (constructors included) and init run off the host thread, bounded by loadTimeoutMs
 *     (default 10 s): a constructor or init that hangs is abandoned (E_LOAD_TIMEOUT), never killed.
 * It does not protect memory: a plugin that scribbles over the host's heap may corrupt it silently
 * before anything crashes.
 * Installed with isolation "process" the same `.so` runs in a worker process of its own
 * (streamplug_worker), which opens and validates it with the same code. Arguments, results and
 * frames live in shared memory, so a batch costs one round trip between the processes (a few
 * microseconds) and no copy per row. A crash, exit(), abort, OOM kill or a call past the host's
 * callTimeoutMs ends only the worker: the host reports it by plugin, hook, rule and signal, fails
 * the batch in flight, restarts the worker (function state starts empty) and quarantines the plugin
 * after 3 crashes in 5 minutes. It does not contain a hostile plugin: the worker has the host's user
 * rights. Sources and sinks do not run isolated yet. host->alloc memory, plugin_data and state live
 * in the worker; host->log lines reach the host after the call. docs/operators.md says what each
 * mode protects against and costs, with figures.
 * Either way: keep constructors empty; do the work in init and report failure through the host
 * routines.
 *
 * NAMES. Types are `sp_*`; macros `SP_*` / `STREAMPLUG_*`; hooks the plugin implements are fields
 * of the `*_def` structs; routines the host implements are fields of `sp_host_api`.
 *
 * EVOLUTION (read before changing this file).
 *   - Every struct that crosses the boundary begins with `uint32_t size` (sizeof as compiled by the
 *     side that filled it) and is append-only: new fields go at the end, are added only in a new
 *     minor version, and are zero/NULL when absent. Nothing is ever removed, reordered or retyped.
 *   - Whoever reads a struct filled by the other side reads `size` first, before any other field,
 *     checks it against the minimum below (SP_*_SIZE_1_x), and reads a later field only when
 *     `size` covers it (SP_HAS_FIELD). It ignores bytes past the fields it knows. A newer host
 *     reads older plugins; an older host reads newer plugins' known prefix.
 *   - ARRAYS (the functions, sources and sinks tables) grow the same way, entry by entry: the
 *     stride of a table is the `size` of its entry 0, every entry of the table carries that same
 *     `size`, and the host walks the table by that stride, never by its own sizeof. A stride must
 *     be a multiple of 8 and at most SP_MAX_ENTRY_SIZE. So a plugin built with a header whose
 *     sp_function_def grew loads in an older host, which reads the fields it knows.
 *   - Minimum sizes per minor (what a plugin declaring that minor must at least fill):
 *       descriptor          1.0: SP_DESCRIPTOR_SIZE_1_0  1.1: SP_DESCRIPTOR_SIZE_1_1
 *                           1.2: SP_DESCRIPTOR_SIZE_1_2  1.3: SP_DESCRIPTOR_SIZE_1_3
 *       sp_host_api         grows the same way, filled by the host: a plugin calls a routine of
 *                           minor N only when it declares STREAMPLUG_PLUGIN_MINOR >= N (the host
 *                           refuses it otherwise) or tests SP_HOST_HAS(host, routine) first.
 *       sp_function_def     1.0: SP_FUNCTION_DEF_SIZE_1_0 (unchanged since)
 *       sp_source_def       1.1: SP_SOURCE_DEF_SIZE_1_1   (unchanged since)
 *       sp_sink_def         1.1: SP_SINK_DEF_SIZE_1_1     (unchanged since)
 *     A plugin built with the 1.0 header has an SP_DESCRIPTOR_SIZE_1_0 descriptor and loads in
 *     every later 1.x host.
 *   - A change that cannot follow these rules bumps the major, and with it the entry point's name
 *     (`streamplug_plugin_v2`), so an old host cannot even find the entry of a new plugin.
 *   - TWO MINORS. `contract_minor` in the descriptor and `contract=` in the manifest say the
 *     oldest host minor the plugin needs (STREAMPLUG_PLUGIN_MINOR); `header_minor` (descriptor,
 *     1.2) and `header=` (manifest, 1.2) say which header it was built with
 *     (STREAMPLUG_CONTRACT_MINOR). The host refuses a plugin whose major differs or whose needed
 *     minor is newer than the host's; the header minor is information only.
 *   - Released headers are kept in streamplug/history/plugin-1.N.h; every sample is built against
 *     each and loaded by today's host in the test suite.
 *
 * LIMITS (enforced by `streamplug check`, install and startup alike):
 *   plugin, function, source and sink names at most SP_MAX_NAME_LENGTH bytes; at most
 *   SP_MAX_FUNCTIONS functions, SP_MAX_SOURCES sources and SP_MAX_SINKS sinks; min_args and
 *   max_args at most SP_MAX_ARGS (max_args may be -1: variadic); arg_types has exactly
 *   SP_ARG_TYPES_LENGTH(def) entries; the manifest text at most SP_MAX_MANIFEST_BYTES.
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
#define STREAMPLUG_CONTRACT_MINOR 3

/* The minor a plugin declares: the oldest host it can run in. Plugins of functions only keep the
 * default 0 and load in every 1.x host; a plugin with sources or sinks (contract 1.1) defines
 *     #define STREAMPLUG_PLUGIN_MINOR 1
 * before including this header. The host refuses sources/sinks in a plugin declaring 1.0.
 * A plugin calling the config_* routines or declaring a state version (1.3) defines it as 3. */
#ifndef STREAMPLUG_PLUGIN_MINOR
#define STREAMPLUG_PLUGIN_MINOR 0
#endif

/* First field of every descriptor: 'SPLG'. A descriptor without it is not a streamplug plugin. */
#define STREAMPLUG_MAGIC 0x53504C47u

/* The exported entry point. The major is in the name: see EVOLUTION. */
#define STREAMPLUG_ENTRY_NAME "streamplug_plugin_v1"

/* Limits: see LIMITS above. */
#define SP_MAX_NAME_LENGTH 64
#define SP_MAX_FUNCTIONS 1024
#define SP_MAX_SOURCES 256
#define SP_MAX_SINKS 256
#define SP_MAX_ARGS 64
#define SP_MAX_ENTRY_SIZE 4096
#define SP_MAX_MANIFEST_BYTES 8192

/* True when a struct filled by the other side, of `size` bytes, includes FIELD. */
#define SP_HAS_FIELD(ptr, type, field) \
  ((ptr)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* True when the host's routine table has ROUTINE (a field of sp_host_api) and fills it: what a
 * plugin declaring an older minor tests before calling a newer routine. */
#define SP_HOST_HAS(host, routine) (SP_HAS_FIELD((host), sp_host_api, routine) && (host)->routine != NULL)

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
 *   `is_constant`: 1 when every row holds the same value and null-ness (a literal in the rule's
 *   SQL, or an argument the caller marked constant); a plugin may read row 0 only. The column
 *   still has `length` rows, all equal (stride 0 is not used, so a plugin that ignores the flag
 *   stays correct). 0: rows may differ; read each one.
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
typedef struct sp_ctx sp_ctx;     /* a function instance in one rule, or a source/sink instance */
typedef struct sp_row sp_row;     /* 1.1: a structured row a source is building (row_begin) */

/* 1.1: what a source or sink reports through host->set_status (shown per rule). */
typedef enum sp_io_state {
  SP_IO_CONNECTING = 0,
  SP_IO_CONNECTED = 1,
  SP_IO_RECONNECTING = 2,
  SP_IO_ERROR = 3
} sp_io_state;

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
   * THREAD: the thread running the hook, during the hook. The host copies `message`; a NULL
   * `message` reads "plugin gave no reason". */
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

  /* ---- contract 1.1: sources and sinks (check host->contract_minor >= 1 before use) ---- */

  /* A source hands the host one raw message (decoded with the stream's FORMAT: a JSON object or
   * an array of objects per message for json). The host copies the bytes into the source's
   * bounded queue. When the queue is full the stream's policy applies: block (this call waits
   * for room), drop oldest or drop newest (counted, SP_OK). Returns SP_ERROR once the host is
   * stopping the source: the data was not taken, stop producing and return.
   * THREAD: any thread, concurrently, from the start of open until close returns. */
  sp_status (*source_push)(sp_ctx *ctx, const void *data, size_t length);

  /* Structured rows, no text round trip: row_begin, then one setter per field (a later setter of
   * the same field wins), then row_push (same rules and result as source_push) or row_discard.
   * Both consume the row. Field names are NUL-terminated and copied.
   * THREAD: any thread; one row is used by one thread at a time. */
  sp_row *(*row_begin)(sp_ctx *ctx);
  void (*row_int64)(sp_row *row, const char *field, int64_t value);
  void (*row_float64)(sp_row *row, const char *field, double value);
  void (*row_bool)(sp_row *row, const char *field, int value);
  void (*row_string)(sp_row *row, const char *field, const char *text, size_t length);
  void (*row_null)(sp_row *row, const char *field);
  sp_status (*row_push)(sp_row *row);
  void (*row_discard)(sp_row *row);

  /* 1 once the host is stopping this source or sink: loops return, blocking calls give up.
   * THREAD: any thread. */
  int (*stopping)(sp_ctx *ctx);

  /* Connection state, with a message (NULL: none) shown in the rule's status; SP_IO_ERROR counts
   * as an error of the instance. The host copies `message`. THREAD: any thread. */
  void (*set_status)(sp_ctx *ctx, int state, const char *message);

  /* Many raw messages at once, under one lock of the source's queue: message i is
   * data[offsets[i] .. offsets[i+1]), so `offsets` has count+1 entries (offsets[0] need not be 0).
   * The same as `count` source_push calls in order (same decoding, overflow policy and counters),
   * for producers that build a block of messages: one call instead of one per message. Under the
   * block policy the call waits whenever the queue is full, as often as needed.
   * Returns SP_OK when every message was taken (or dropped by the policy); SP_ERROR once the host is
   * stopping the source (stop producing and return) or when offsets decrease. *accepted (NULL: not
   * wanted) receives how many messages, from the first, were taken or dropped before it returned.
   * THREAD: any thread, concurrently, from the start of open until close returns. The host copies
   * the bytes; `data` and `offsets` are borrowed for the call. */
  sp_status (*source_push_many)(sp_ctx *ctx, const char *data, const uint32_t *offsets, size_t count,
                                size_t *accepted);

  /* ---- contract 1.3: typed configuration of sources and sinks (declare STREAMPLUG_PLUGIN_MINOR 3,
   * or test SP_HOST_HAS(host, config_string) before use) ----
   *
   * Read one top-level key of the instance's configuration (the JSON object validate and open
   * receive), parsed once per instance by the host. `key` is NUL-terminated and matched exactly.
   *   - Absent key, or JSON null: the routine returns `fallback` (config_string: *length =
   *     strlen(fallback), or 0 and NULL for a NULL fallback). Not an error.
   *   - Present with another type: an error that names the key, the expected and the found type
   *     (`config key "interval": expected an integer (int64), found string "fast"`). The routine
   *     sets it as the hook's error and returns `fallback`, and the host fails that validate or
   *     open with it even if the hook returns SP_OK (open: close is then called). So a plugin may
   *     read every key first and check once.
   *   - A configuration that is not one JSON object: the same, naming the byte where it broke.
   * Types: config_string a JSON string (unescaped, UTF-8; the pointer is NUL-terminated, *length
   * excludes the NUL, `length` may be NULL); config_int64 a number written without fraction or
   * exponent within int64; config_double any number; config_bool true/false (returns 1 or 0);
   * config_json any value except null, as its raw JSON text (nested objects and arrays: parse
   * them yourself), NULL when absent.
   * OWNERSHIP: returned text is host memory, valid until close returns (validate: until validate
   * returns). A function's ctx has no configuration: every key is absent.
   * THREAD: a hook of this ctx, one thread at a time (validate, open, run, collect, close). */
  const char *(*config_string)(sp_ctx *ctx, const char *key, const char *fallback, size_t *length);
  int64_t (*config_int64)(sp_ctx *ctx, const char *key, int64_t fallback);
  double (*config_double)(sp_ctx *ctx, const char *key, double fallback);
  int (*config_bool)(sp_ctx *ctx, const char *key, int fallback);
  const char *(*config_json)(sp_ctx *ctx, const char *key, size_t *length);

  /* ---- contract 1.4 and later: append here ---- */
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
  const uint32_t *arg_types;    /* exactly SP_ARG_TYPES_LENGTH(def) entries: one sp_type per
                                 * declared argument, max(min_args, 1); NULL when max_args is 0 */
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

/* How many entries `arg_types` (and a non-NULL `arg_flags`) holds: max(min_args, 1) when the
 * function takes arguments, else 0. The host never reads further. */
#define SP_ARG_TYPES_LENGTH(def) ((def)->max_args == 0 ? 0 : ((def)->min_args > 1 ? (def)->min_args : 1))

/* Entry size of a 1.0 sp_function_def: the smallest entry a host accepts. */
#define SP_FUNCTION_DEF_SIZE_1_0 (offsetof(sp_function_def, close) + sizeof(void (*)(sp_ctx *)))

/* ---------------------------------------------------------------------------------------------
 * Sources and sinks (contract 1.1): connectors a stream reads from (`CREATE STREAM s () WITH
 * (TYPE="random")`) and rule actions write to (`{"actions": [{"filesink": {...}}]}`).
 *
 * CONFIG. Both get their configuration as JSON text (an object: the stream's or action's
 * properties), `config` of `length` bytes, NOT NUL-terminated. Refuse a bad one in validate (or
 * open) with set_error saying what was found and what is expected. From 1.3 the host reads it for
 * you: host->config_string / config_int64 / config_double / config_bool / config_json (above).
 *
 * INSTANCE. open stores whatever it needs in *instance; the host passes it back to every later
 * hook of that instance and never after close.
 *
 * LIFECYCLE, source: validate? -> open -> [run] -> close. The host calls open, run and close on a
 * thread of its own, never the host thread, one after the other. A source either
 *   - has a `run` hook: the host calls it once on a dedicated thread; it produces with
 *     source_push / row_push until host->stopping(ctx) is 1, then returns; or
 *   - has no `run`: open starts the plugin's own threads, close stops and joins them.
 * Once close returns, the plugin must not call the host for that ctx again.
 *
 * LIFECYCLE, sink: validate? -> open -> collect* -> close. Every hook of one sink instance runs on
 * that instance's worker thread, one at a time. collect receives one batch and returns SP_OK
 * (delivered), SP_RETRY (not delivered, try again: the host calls collect again with the same
 * batch after a backoff, so a sink sees a batch at least once) or SP_ERROR (fatal: the sink stops,
 * its status becomes error with the message). close flushes and releases; it runs once, after the
 * last collect.
 *
 * A hook that takes too long to close is abandoned by the host after a timeout (reported): the
 * library then stays mapped, because the hook is still running in it.
 * ------------------------------------------------------------------------------------------- */

typedef struct sp_source_def {
  uint32_t size;
  const char *name;             /* TYPE name, ^[A-Za-z0-9_]+$, unique across loaded plugins */
  uint32_t flags;               /* reserved, 0 */

  /* Optional. Check a configuration without starting anything (CREATE STREAM). Host thread. */
  sp_status (*validate)(sp_ctx *ctx, const char *config, size_t length);
  /* Connect / start. SP_ERROR with set_error refuses to start; close is then not called. */
  sp_status (*open)(sp_ctx *ctx, const char *config, size_t length, void **instance);
  /* Optional: produce until host->stopping(ctx); see LIFECYCLE. */
  void (*run)(sp_ctx *ctx, void *instance);
  /* Stop and release. Called once. */
  void (*close)(sp_ctx *ctx, void *instance);
} sp_source_def;

/* Sink flags. */
#define SP_SINK_ENCODED 0x1u    /* collect receives rows as JSON text (batch->data), not columns */

/*
 * One batch of result rows for a sink.
 *   Encoded (SP_SINK_ENCODED): row i is the JSON object text followed by one newline,
 *   data[offsets[i] .. offsets[i+1]) (offsets has nrows+1 entries), so the whole batch,
 *   data[offsets[0] .. offsets[nrows]), is JSON Lines ready to write. columns is NULL.
 *   Typed: ncols columns of nrows rows, column c named names[c] (NUL-terminated); a row without
 *   the field is null there. Numbers arrive as FLOAT64 (INT64 for integers beyond 2^53), strings
 *   as STRING, booleans as BOOL; nested objects and arrays, and fields whose type varies within
 *   the batch, as STRING holding their JSON text. data/offsets are NULL.
 * OWNERSHIP: borrowed for the duration of collect.
 */
typedef struct sp_batch {
  uint32_t size;
  size_t nrows;
  const char *data;
  const uint32_t *offsets;
  size_t ncols;
  const char *const *names;
  const sp_column *columns;
} sp_batch;

typedef struct sp_sink_def {
  uint32_t size;
  const char *name;             /* action name, ^[A-Za-z0-9_]+$, unique across loaded plugins */
  uint32_t flags;               /* SP_SINK_* */

  /* Optional. Check a configuration (rule creation). Host thread. */
  sp_status (*validate)(sp_ctx *ctx, const char *config, size_t length);
  /* Connect / open files. SP_RETRY: the host tries again after a backoff; SP_ERROR: fatal. */
  sp_status (*open)(sp_ctx *ctx, const char *config, size_t length, void **instance);
  /* Deliver one batch: SP_OK, SP_RETRY or SP_ERROR (see LIFECYCLE). */
  sp_status (*collect)(sp_ctx *ctx, void *instance, const sp_batch *batch);
  /* Flush and release. Called once when open succeeded. */
  void (*close)(sp_ctx *ctx, void *instance);
} sp_sink_def;

/* Entry sizes of 1.1 source and sink definitions: the smallest a host accepts. */
#define SP_SOURCE_DEF_SIZE_1_1 (offsetof(sp_source_def, close) + sizeof(void (*)(sp_ctx *, void *)))
#define SP_SINK_DEF_SIZE_1_1 (offsetof(sp_sink_def, close) + sizeof(void (*)(sp_ctx *, void *)))

#define SP_SOURCE_DEF(NAME, FLAGS, VALIDATE, OPEN, RUN, CLOSE) \
  { (uint32_t)sizeof(sp_source_def), NAME, FLAGS, VALIDATE, OPEN, RUN, CLOSE }
#define SP_SINK_DEF(NAME, FLAGS, VALIDATE, OPEN, COLLECT, CLOSE) \
  { (uint32_t)sizeof(sp_sink_def), NAME, FLAGS, VALIDATE, OPEN, COLLECT, CLOSE }

/* ---------------------------------------------------------------------------------------------
 * The descriptor: what the entry point returns (PostgreSQL's magic block, grown up).
 * ------------------------------------------------------------------------------------------- */

typedef struct sp_plugin_descriptor {
  uint32_t magic;               /* STREAMPLUG_MAGIC */
  uint32_t size;                /* sizeof(sp_plugin_descriptor) as the plugin was built */
  uint16_t contract_major;      /* STREAMPLUG_CONTRACT_MAJOR the plugin was built with */
  uint16_t contract_minor;      /* the oldest host minor the plugin needs (STREAMPLUG_PLUGIN_MINOR) */
  uint32_t reserved0;
  const char *name;             /* plugin name, ^[A-Za-z0-9_-]+$, at most SP_MAX_NAME_LENGTH bytes */
  const char *version;          /* plugin version, free text (semver advised) */
  const char *build_compiler;   /* e.g. "gcc 12.2.0" */
  const char *build_arch;       /* "x86_64", "aarch64", … */
  const char *build_libc;       /* "glibc 2.36", "musl", … */

  /* Optional. Called once after load, before any other hook. Store plugin-wide data in
   * *plugin_data (returned by host->plugin_data). Return SP_ERROR with set_error(ctx, …) to
   * refuse the load: deinit is then not called and the library is unloaded.
   * THREAD: a loading thread of the host's (not the host thread), once; no other hook of this
   * plugin runs before it returns. `host` stays valid until deinit returns. */
  sp_status (*init)(const sp_host_api *host, sp_ctx *ctx, void **plugin_data);

  /* Optional. Called once before unload, after every ctx was closed. THREAD: host thread. */
  void (*deinit)(void *plugin_data);

  size_t n_functions;
  const sp_function_def *functions;

  /* ---- contract 1.1: sources and sinks (a 1.0 descriptor is smaller: the host reads these
   * only when `size` covers them) ---- */
  size_t n_sources;
  const sp_source_def *sources;
  size_t n_sinks;
  const sp_sink_def *sinks;

  /* ---- contract 1.2: the header the plugin was built with (information; see TWO MINORS).
   * A smaller descriptor was built with the 1.0 (SP_DESCRIPTOR_SIZE_1_0) or 1.1 header. ---- */
  uint32_t header_minor;        /* STREAMPLUG_CONTRACT_MINOR of the header, set by STREAMPLUG_PLUGIN */

  /* ---- contract 1.3: state versioning (a plugin setting these declares STREAMPLUG_PLUGIN_MINOR 3).
   * The host stamps every checkpoint of a stateful function's state (host->state_*) with
   * `state_version`. When a rule restarts, the plugin is updated, or the host restarts, and the
   * checkpoint's version differs from the loaded plugin's (a checkpoint written before 1.3, or by
   * a plugin that left this 0, is version 0):
   *   - no migrate_state: the state is dropped and the host logs a line naming both versions;
   *   - migrate_state: the old keys are put into the ctx first, then the hook runs and rewrites
   *     them with state_get/state_put/state_delete. SP_OK keeps the result; SP_ERROR drops the
   *     state and logs the hook's message with both versions.
   * THREAD: host thread, before the function's first call in that rule. ---- */
  uint32_t state_version;       /* 0: unversioned (every checkpoint is version 0) */
  uint32_t reserved1;
  sp_status (*migrate_state)(sp_ctx *ctx, const char *function, uint32_t from_version, uint32_t to_version);

  /* ---- contract 1.4 and later: append here ---- */
} sp_plugin_descriptor;

/* Descriptor sizes by the minor that introduced its last field (see EVOLUTION). */
#define SP_DESCRIPTOR_SIZE_1_0 (offsetof(sp_plugin_descriptor, functions) + sizeof(const sp_function_def *))
#define SP_DESCRIPTOR_SIZE_1_1 (offsetof(sp_plugin_descriptor, sinks) + sizeof(const sp_sink_def *))
#define SP_DESCRIPTOR_SIZE_1_2 (offsetof(sp_plugin_descriptor, header_minor) + sizeof(uint32_t))
#define SP_DESCRIPTOR_SIZE_1_3 \
  (offsetof(sp_plugin_descriptor, migrate_state) + sizeof(sp_status (*)(sp_ctx *, const char *, uint32_t, uint32_t)))

typedef const sp_plugin_descriptor *(*sp_entry_fn)(void);

/* ---------------------------------------------------------------------------------------------
 * The manifest note: lets the host read what a file is *without loading it*.
 *
 * An ELF note in section ".note.streamplug" (type SHT_NOTE, so it also lands in a PT_NOTE
 * segment): owner "streamplug", type 1, description a NUL-terminated text of `key=value` lines:
 *     contract=1.0
 *     header=1.2
 *     name=samples
 *     version=1.2.0
 *     extensions=function:echo,function:countPlusOne
 *     arch=x86_64
 *     libc=glibc
 *
 * GRAMMAR (exact bytes; `streamplug check` and the host parse it identically, and share test
 * vectors, test/fixtures/manifest-vectors.json):
 *   - Where: only notes inside PT_NOTE segments count (a note in a section outside every PT_NOTE
 *     segment is not read). Inside a segment, notes follow each other with namesz and descsz
 *     padded to 4 bytes, or to 8 when the segment's p_align is 8. The manifest is the first note
 *     whose namesz is 11 ("streamplug" and its NUL), owner bytes "streamplug\0" and type 1.
 *   - Text: the description up to its first NUL byte (no NUL: all descsz bytes), at most
 *     SP_MAX_MANIFEST_BYTES, valid UTF-8.
 *   - Lines: every line ends with one '\n' byte, the last one included; no '\r' anywhere, no
 *     empty line. A line is KEY '=' VALUE: KEY is [a-z][a-z0-9_]* (nothing before it), VALUE is
 *     everything after the first '=' up to the '\n', byte for byte: no trimming, spaces are part
 *     of it. A key appears at most once.
 *   - Keys read today: contract (required, MAJOR.MINOR in decimal digits, 1 to 5 each: the minor
 *     the plugin needs), header (MAJOR.MINOR: the header it was built with), name (required, the
 *     plugin name), version, extensions (comma-separated `function:NAME` / `source:NAME` /
 *     `sink:NAME` with no spaces and no empty items), arch, libc. Unknown keys are ignored.
 * The host refuses a `.so` whose note is missing or breaks this grammar (E_BAD_MANIFEST), and one
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
  "contract=" SP_STR(STREAMPLUG_CONTRACT_MAJOR) "." SP_STR(STREAMPLUG_PLUGIN_MINOR) "\n"      \
  "header=" SP_STR(STREAMPLUG_CONTRACT_MAJOR) "." SP_STR(STREAMPLUG_CONTRACT_MINOR) "\n"      \
  "name=" NAME "\nversion=" VERSION "\nextensions=" EXTENSIONS "\n"                          \
  "arch=" SP_BUILD_ARCH "\nlibc=" SP_BUILD_LIBC_FLAVOUR "\n"

/*
 * STREAMPLUG_PLUGIN(NAME, VERSION, EXTENSIONS, DESCRIBE)
 *   NAME, VERSION  string literals.
 *   EXTENSIONS     string literal listing what the plugin provides, comma-separated
 *                  `function:NAME`, `source:NAME` and `sink:NAME` entries; written into the
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
      d.contract_minor = STREAMPLUG_PLUGIN_MINOR;                                            \
      d.header_minor = STREAMPLUG_CONTRACT_MINOR;                                            \
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

/* =============================================================================================
 * BEGIN type-checked column accessors (header only; no contract change)
 *
 *   const double *x = sp_col_f64(host, call, 0);     if (!x) return SP_ERROR;
 *   const int64_t *n = sp_col_i64(host, call, 1);    (also sp_col_bool -> const uint8_t *)
 *   const sp_column *s = sp_col_str(host, call, 2);  (STRING: offsets + data; sp_col_bytes: BYTES)
 *
 * Without STREAMPLUG_DEBUG they are plain field access (call->args[i].values), no check, no cost;
 * plain field access stays valid. With STREAMPLUG_DEBUG defined (the Debug build of
 * streamplug_add_plugin defines it) each checks the column's type first: on a mismatch it fails the
 * call through host->set_error with a message naming the C function, the argument (1-based) and
 * both types, and returns NULL — so a BIGINT read as double, or a STRING read as double (a crash),
 * becomes an error that says what happened. `host` is the sp_host_api pointer init received.
 * ============================================================================================= */
#ifdef STREAMPLUG_DEBUG
#include <stdio.h>
#endif

static inline const char *sp_type_name(uint32_t type) {
  switch (type) {
    case SP_TYPE_ANY: return "any";
    case SP_TYPE_BOOL: return "bool";
    case SP_TYPE_INT64: return "int64";
    case SP_TYPE_FLOAT64: return "float64";
    case SP_TYPE_STRING: return "string";
    case SP_TYPE_BYTES: return "bytes";
    default: return "unknown";
  }
}

static inline const sp_column *sp_col_checked_(const sp_host_api *host, const sp_call *call, size_t arg,
                                               uint32_t want, const char *accessor, const char *function) {
#ifdef STREAMPLUG_DEBUG
  char message[256];
  if (arg >= call->nargs) {
    snprintf(message, sizeof message, "%s: %s(call, %u): the call has %u argument(s)", function, accessor,
             (unsigned)arg, (unsigned)call->nargs);
    host->set_error(call->ctx, message);
    return NULL;
  }
  if (call->args[arg].type != want) {
    snprintf(message, sizeof message,
             "%s: argument %u is %s, read as %s with %s; declare the argument's type or check col->type",
             function, (unsigned)arg + 1, sp_type_name(call->args[arg].type), sp_type_name(want), accessor);
    host->set_error(call->ctx, message);
    return NULL;
  }
#else
  (void)host; (void)want; (void)accessor; (void)function;
#endif
  return &call->args[arg];
}

static inline const void *sp_col_values_(const sp_column *col) { return col ? col->values : NULL; }

#define sp_col_f64(host, call, i) \
  ((const double *)sp_col_values_(sp_col_checked_((host), (call), (i), SP_TYPE_FLOAT64, "sp_col_f64", __func__)))
#define sp_col_i64(host, call, i) \
  ((const int64_t *)sp_col_values_(sp_col_checked_((host), (call), (i), SP_TYPE_INT64, "sp_col_i64", __func__)))
#define sp_col_bool(host, call, i) \
  ((const uint8_t *)sp_col_values_(sp_col_checked_((host), (call), (i), SP_TYPE_BOOL, "sp_col_bool", __func__)))
#define sp_col_str(host, call, i) sp_col_checked_((host), (call), (i), SP_TYPE_STRING, "sp_col_str", __func__)
#define sp_col_bytes(host, call, i) sp_col_checked_((host), (call), (i), SP_TYPE_BYTES, "sp_col_bytes", __func__)
/* END type-checked column accessors ========================================================== */

#endif /* STREAMPLUG_PLUGIN_H */
