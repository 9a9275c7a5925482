/*
 * random: a source (contract 1.1) in the spirit of eKuiper's `random` sample.
 *
 * Config (JSON object; every key optional):
 *   interval     ms between rows, > 0 (default 1000); ignored with burst
 *   seed         > 0 (default 1): each row is, per pattern field, value + a random integer in [0, seed)
 *   pattern      object of integers (default {"count": 50})
 *   deduplicate  0 off (default); N > 0 skips a row equal to one of the last N emitted; < 0 all (up to 4096)
 *   burst        true: emit as fast as the host takes rows (benchmarks); JSON text then goes in
 *                blocks of up to 256 rows, one host->source_push_many per block
 *   mode         "json" (default: raw JSON text, decoded by the host) or "rows" (structured rows
 *                through host->row_*, no text)
 *   count        stop after this many rows (default 0: no limit)
 *   sequence     true: add "seq": 0, 1, 2, ... (ordering checks)
 *   pad          add "pad": a string of this many 'x' (row size for benchmarks)
 *   rng_seed     > 0: start the generator from this state, so a run is reproducible (default: the
 *                clock). Stream property RNG_SEED, or "rng_seed" in CONFIG.
 *
 * The host runs `run` on a thread of its own; it produces until host->stopping() or count.
 * It reads its config with the host's config_* routines (contract 1.3): a key of the wrong type
 * (e.g. "interval": "fast") fails CREATE STREAM / the rule with a message naming the key.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, strdup under -std=c99 */
#define STREAMPLUG_PLUGIN_MINOR 3 /* config_* routines */
#include <streamplug/plugin.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FIELDS 16
#define MAX_NAME 64
#define MAX_DEDUP 4096

typedef struct config {
  long long interval, seed, deduplicate, count, pad, rng_seed;
  int burst, rows, sequence;
  int nfields;
  char names[MAX_FIELDS][MAX_NAME];
  long long values[MAX_FIELDS];
} config;

typedef struct random_source {
  config c;
  unsigned long long state;
  char *padding;
  char **recent; /* dedup ring of row texts */
  size_t nrecent, next;
} random_source;

static const sp_host_api *host;

/* ---- config: scalars through the host's config_* routines (contract 1.3); only the nested
 * "pattern" object is read here, from the raw JSON text config_json hands out ------------------ */

static const char *ws(const char *p, const char *e) {
  while (p < e && isspace((unsigned char)*p)) p++;
  return p;
}

static int fail(sp_ctx *ctx, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "random: %s", what);
  host->set_error(ctx, msg);
  return 0;
}

/* pattern: {"name": integer, ...}, at most MAX_FIELDS flat keys without escapes. */
static int parse_pattern(sp_ctx *ctx, const char *p, const char *e, config *c) {
  p = ws(p, e);
  if (p >= e || *p != '{') return fail(ctx, "pattern is not an object; expected e.g. {\"count\": 50}");
  c->nfields = 0;
  p = ws(p + 1, e);
  while (p < e && *p != '}') {
    char *end;
    size_t n = 0;
    long long value;
    if (c->nfields == MAX_FIELDS) return fail(ctx, "pattern has more than 16 fields");
    if (*p != '"') return fail(ctx, "pattern is not a flat object of integers");
    for (p++; p < e && *p != '"' && *p != '\\'; p++)
      if (n + 1 < MAX_NAME) c->names[c->nfields][n++] = *p;
    c->names[c->nfields][n] = '\0';
    if (p >= e || *p != '"') return fail(ctx, "pattern keys must be plain names (no escapes)");
    p = ws(p + 1, e);
    if (p >= e || *p != ':') return fail(ctx, "pattern is not a valid JSON object");
    value = strtoll(ws(p + 1, e), &end, 10); /* the host checked the JSON: end stays inside it */
    if (end == ws(p + 1, e) || (*end != ',' && *end != '}' && !isspace((unsigned char)*end))) {
      char msg[160];
      snprintf(msg, sizeof msg, "pattern.%s is not an integer; the pattern maps field names to integers",
               c->names[c->nfields]);
      return fail(ctx, msg);
    }
    c->values[c->nfields++] = value;
    p = ws(end, e);
    if (p < e && *p == ',') p = ws(p + 1, e);
  }
  return 1;
}

/* Reads every key, then checks once: a key of the wrong type has already failed the hook, with a
 * message naming it (the host does that), so only ranges are checked here. */
static int parse_config(sp_ctx *ctx, config *c) {
  const char *mode, *pattern;
  size_t pattern_length;
  memset(c, 0, sizeof *c);
  c->interval = host->config_int64(ctx, "interval", 1000);
  c->seed = host->config_int64(ctx, "seed", 1);
  c->deduplicate = host->config_int64(ctx, "deduplicate", 0);
  c->count = host->config_int64(ctx, "count", 0);
  c->pad = host->config_int64(ctx, "pad", 0);
  c->rng_seed = host->config_int64(ctx, "rng_seed", 0);
  c->burst = host->config_bool(ctx, "burst", 0);
  c->sequence = host->config_bool(ctx, "sequence", 0);
  mode = host->config_string(ctx, "mode", "json", NULL);
  pattern = host->config_json(ctx, "pattern", &pattern_length);
  if (pattern) {
    if (!parse_pattern(ctx, pattern, pattern + pattern_length, c)) return 0;
  } else {
    c->nfields = 1;
    strcpy(c->names[0], "count");
    c->values[0] = 50;
  }
  if (strcmp(mode, "rows") == 0) c->rows = 1;
  else if (strcmp(mode, "json") != 0) return fail(ctx, "mode must be \"json\" or \"rows\"");
  if (c->interval <= 0) return fail(ctx, "interval must be > 0 (milliseconds between rows)");
  if (c->seed <= 0) return fail(ctx, "seed must be > 0 (random values are in [0, seed))");
  if (c->pad < 0 || c->pad > 1 << 20) return fail(ctx, "pad must be between 0 and 1048576");
  if (c->count < 0) return fail(ctx, "count must be >= 0 (0: no limit)");
  if (c->rng_seed < 0) return fail(ctx, "rng_seed must be an integer > 0");
  return 1;
}

/* ---- the source ------------------------------------------------------------------------------ */

static unsigned long long next_random(random_source *s) {
  /* xorshift64*: fast, and each instance has its own state */
  s->state ^= s->state >> 12;
  s->state ^= s->state << 25;
  s->state ^= s->state >> 27;
  return s->state * 2685821657736338717ULL;
}

/* Decimal text of v at p; returns its length. snprintf costs more than the rest of a row. */
static size_t put_int(char *p, long long v) {
  char tmp[24];
  size_t n = 0, i;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  i = 0;
  if (v < 0) p[i++] = '-';
  while (n) p[i++] = tmp[--n];
  return i;
}

static size_t put(char *p, const char *text, size_t length) {
  memcpy(p, text, length);
  return length;
}

static sp_status validate(sp_ctx *ctx, const char *text, size_t length) {
  config c;
  (void)text;
  (void)length; /* the host parsed it: config_* read it */
  return parse_config(ctx, &c) ? SP_OK : SP_ERROR;
}

static sp_status open_source(sp_ctx *ctx, const char *text, size_t length, void **instance) {
  random_source *s = (random_source *)calloc(1, sizeof *s);
  (void)text;
  (void)length;
  if (!s) {
    host->set_error(ctx, "random: out of memory");
    return SP_ERROR;
  }
  if (!parse_config(ctx, &s->c)) {
    free(s);
    return SP_ERROR;
  }
  s->state = s->c.rng_seed > 0 ? (unsigned long long)s->c.rng_seed * 0x9E3779B97F4A7C15ULL
                                : 0x9E3779B97F4A7C15ULL ^ (unsigned long long)time(NULL) ^ (unsigned long long)(size_t)s;
  if (s->state == 0) s->state = 1;
  if (s->c.pad > 0) {
    s->padding = (char *)malloc((size_t)s->c.pad + 1);
    memset(s->padding, 'x', (size_t)s->c.pad);
    s->padding[s->c.pad] = '\0';
  }
  if (s->c.deduplicate != 0) {
    s->nrecent = s->c.deduplicate < 0 || s->c.deduplicate > MAX_DEDUP ? MAX_DEDUP : (size_t)s->c.deduplicate;
    s->recent = (char **)calloc(s->nrecent, sizeof(char *));
  }
  host->set_status(ctx, SP_IO_CONNECTED, NULL);
  *instance = s;
  return SP_OK;
}

static int seen_recently(random_source *s, const char *text) {
  size_t i;
  for (i = 0; i < s->nrecent; i++)
    if (s->recent[i] && strcmp(s->recent[i], text) == 0) return 1;
  free(s->recent[s->next]);
  s->recent[s->next] = strdup(text);
  s->next = (s->next + 1) % s->nrecent;
  return 0;
}

static void sleep_ms(long long ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* One row as JSON text at `text` (room: row_capacity); returns its length. */
static size_t format_row(random_source *s, const long long *values, long long seq, char *text) {
  const config *c = &s->c;
  size_t n = 0;
  int i;
  text[n++] = '{';
  if (c->sequence) {
    n += put(text + n, "\"seq\":", 6);
    n += put_int(text + n, seq);
    text[n++] = ',';
  }
  for (i = 0; i < c->nfields; i++) {
    if (i) text[n++] = ',';
    text[n++] = '"';
    n += put(text + n, c->names[i], strlen(c->names[i]));
    text[n++] = '"';
    text[n++] = ':';
    n += put_int(text + n, values[i]);
  }
  if (c->pad) {
    n += put(text + n, ",\"pad\":\"", 8);
    n += put(text + n, s->padding, (size_t)c->pad);
    text[n++] = '"';
  }
  text[n++] = '}';
  return n;
}

static size_t row_capacity(const config *c) { return 256 + (size_t)c->pad + (size_t)c->nfields * (MAX_NAME + 24); }

static void next_values(random_source *s, long long *values) {
  int i;
  for (i = 0; i < s->c.nfields; i++) values[i] = s->c.values[i] + (long long)(next_random(s) % (unsigned long long)s->c.seed);
}

/* Burst of JSON text: rows are built into a block of up to BLOCK_ROWS rows / BLOCK_BYTES bytes and
 * handed over with one source_push_many (one lock of the host's queue per block, not per row). */
#define BLOCK_ROWS 256
#define BLOCK_BYTES (64 * 1024)

static void run_blocks(sp_ctx *ctx, random_source *s) {
  const config *c = &s->c;
  const size_t cap = row_capacity(c);
  const size_t room = cap > BLOCK_BYTES ? cap : BLOCK_BYTES;
  char *block = (char *)malloc(room + cap);
  uint32_t offsets[BLOCK_ROWS + 1];
  long long values[MAX_FIELDS];
  long long emitted = 0;
  if (!block) return;
  while (!host->stopping(ctx) && (c->count == 0 || emitted < c->count)) {
    size_t n = 0, at = 0, accepted = 0;
    offsets[0] = 0;
    while (n < BLOCK_ROWS && at < room && (c->count == 0 || emitted + (long long)n < c->count)) {
      next_values(s, values);
      at += format_row(s, values, emitted + (long long)n, block + at);
      offsets[++n] = (uint32_t)at;
    }
    if (host->source_push_many(ctx, block, offsets, n, &accepted) != SP_OK) break;
    emitted += (long long)n;
  }
  free(block);
}

static void run(sp_ctx *ctx, void *instance) {
  random_source *s = (random_source *)instance;
  const config *c = &s->c;
  char *text;
  long long values[MAX_FIELDS];
  long long emitted = 0, seq = 0;
  if (c->burst && !c->rows && s->nrecent == 0 && SP_HAS_FIELD(host, sp_host_api, source_push_many) &&
      host->source_push_many != NULL) {
    run_blocks(ctx, s);
    return;
  }
  text = (char *)malloc(row_capacity(c));
  if (!text) return;
  while (!host->stopping(ctx) && (c->count == 0 || emitted < c->count)) {
    size_t n;
    int i;
    next_values(s, values);
    if (c->rows && s->nrecent == 0) {
      sp_row *row = host->row_begin(ctx);
      if (c->sequence) host->row_int64(row, "seq", seq);
      for (i = 0; i < c->nfields; i++) host->row_int64(row, c->names[i], values[i]);
      if (c->pad) host->row_string(row, "pad", s->padding, (size_t)c->pad);
      if (host->row_push(row) != SP_OK) break;
    } else {
      n = format_row(s, values, seq, text);
      text[n] = '\0';
      if (s->nrecent == 0 || !seen_recently(s, text)) {
        if (host->source_push(ctx, text, n) != SP_OK) break;
      } else {
        if (!c->burst) sleep_ms(c->interval);
        continue;
      }
    }
    emitted++;
    seq++;
    if (!c->burst) {
      long long left = c->interval;
      while (left > 0 && !host->stopping(ctx)) { /* sleep in slices so stop is prompt */
        long long step = left < 20 ? left : 20;
        sleep_ms(step);
        left -= step;
      }
    }
  }
  free(text);
}

static void close_source(sp_ctx *ctx, void *instance) {
  random_source *s = (random_source *)instance;
  size_t i;
  (void)ctx;
  for (i = 0; i < s->nrecent; i++) free(s->recent[i]);
  free(s->recent);
  free(s->padding);
  free(s);
}

static sp_status init(const sp_host_api *h, sp_ctx *ctx, void **data) {
  (void)data;
  host = h;
  if (!SP_HOST_HAS(h, config_json)) {
    h->set_error(ctx, "random needs a host with contract 1.3 (sources, config_* routines)");
    return SP_ERROR;
  }
  return SP_OK;
}

static const sp_source_def sources[] = {
  SP_SOURCE_DEF("random", 0, validate, open_source, run, close_source),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = init;
  d->sources = sources;
  d->n_sources = 1;
}

STREAMPLUG_PLUGIN("random", "1.0.0", "source:random", describe)
