// filesink: a sink (contract 1.1) writing JSON Lines to a file, buffered, flushed on close.
//
// Config (JSON object, read with the host's config_* routines): "path" (required, a string),
// "bufferBytes" (flush threshold, an integer, default 65536).
// It asks the host for encoded rows (SP_SINK_ENCODED): each batch arrives as JSON Lines already.
// The file is opened in append mode. Before each write the sink checks that `path` still names
// the file it holds open; when the file or its directory was removed it reopens, and when that
// fails it reports the error and returns SP_RETRY: the host retries the batch with backoff, so
// nothing is lost once the directory is back. Rows acknowledged (SP_OK) but still buffered when
// a flush fails stay buffered and are written at the next successful flush.
#define STREAMPLUG_PLUGIN_MINOR 3  // config_* routines
#include <streamplug/plugin.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

const sp_host_api *host = nullptr;

struct FileSink {
  std::string path;
  size_t buffer_bytes = 65536;
  std::string buffer;
  FILE *file = nullptr;
  ino_t inode = 0;
  dev_t device = 0;
};

// The host parses the config (contract 1.3 config_* routines): a key of the wrong type, e.g.
// "bufferBytes": "big", already failed the hook with a message naming it.
bool Parse(sp_ctx *ctx, FileSink *s) {
  size_t length = 0;
  const char *path = host->config_string(ctx, "path", nullptr, &length);
  const int64_t buffer_bytes = host->config_int64(ctx, "bufferBytes", 65536);
  if (path == nullptr || length == 0) {
    host->set_error(ctx, "filesink: config has no \"path\"; give the file to write, e.g. {\"path\": \"/tmp/out.jsonl\"}");
    return false;
  }
  if (buffer_bytes < 0) {
    host->set_error(ctx, ("filesink: bufferBytes is " + std::to_string(buffer_bytes) + ", expected a non-negative integer").c_str());
    return false;
  }
  s->path.assign(path, length);
  s->buffer_bytes = static_cast<size_t>(buffer_bytes);
  return true;
}

void Report(sp_ctx *ctx, const std::string &what) {
  const std::string message = "filesink: " + what + ": " + std::strerror(errno);
  host->set_error(ctx, message.c_str());
  host->set_status(ctx, SP_IO_RECONNECTING, message.c_str());
}

// The open file is still the one `path` names; otherwise (re)open it.
bool EnsureOpen(sp_ctx *ctx, FileSink *s) {
  struct stat st;
  if (s->file != nullptr) {
    if (stat(s->path.c_str(), &st) == 0 && st.st_ino == s->inode && st.st_dev == s->device) return true;
    std::fclose(s->file);  // removed or replaced under us: what it held was written to a dead file
    s->file = nullptr;
  }
  s->file = std::fopen(s->path.c_str(), "ab");
  if (s->file == nullptr) {
    Report(ctx, "cannot open " + s->path);
    return false;
  }
  if (fstat(fileno(s->file), &st) == 0) {
    s->inode = st.st_ino;
    s->device = st.st_dev;
  }
  host->set_status(ctx, SP_IO_CONNECTED, nullptr);
  return true;
}

bool Flush(sp_ctx *ctx, FileSink *s) {
  if (s->buffer.empty()) return true;
  if (!EnsureOpen(ctx, s)) return false;
  if (std::fwrite(s->buffer.data(), 1, s->buffer.size(), s->file) != s->buffer.size() || std::fflush(s->file) != 0) {
    Report(ctx, "cannot write " + s->path);
    std::fclose(s->file);
    s->file = nullptr;
    return false;
  }
  s->buffer.clear();
  return true;
}

sp_status Validate(sp_ctx *ctx, const char *config, size_t length) {
  FileSink probe;
  (void)config;
  (void)length;
  return Parse(ctx, &probe) ? SP_OK : SP_ERROR;
}

sp_status Open(sp_ctx *ctx, const char *config, size_t length, void **instance) {
  auto *s = new FileSink();
  (void)config;
  (void)length;
  if (!Parse(ctx, s)) {
    delete s;
    return SP_ERROR;
  }
  if (!EnsureOpen(ctx, s)) {
    delete s;
    return SP_RETRY;  // the directory may appear later
  }
  *instance = s;
  return SP_OK;
}

sp_status Collect(sp_ctx *ctx, void *instance, const sp_batch *batch) {
  auto *s = static_cast<FileSink *>(instance);
  // Earlier acknowledged rows first; this batch is taken only when they are out of the way.
  if (s->buffer.size() >= s->buffer_bytes && !Flush(ctx, s)) return SP_RETRY;
  if (!EnsureOpen(ctx, s)) return SP_RETRY;
  s->buffer.append(batch->data, batch->offsets[batch->nrows]);
  if (s->buffer.size() >= s->buffer_bytes) Flush(ctx, s);  // failure: rows stay buffered, acknowledged
  return SP_OK;
}

void Close(sp_ctx *ctx, void *instance) {
  auto *s = static_cast<FileSink *>(instance);
  if (!Flush(ctx, s)) {
    const std::string message = "filesink: " + std::to_string(s->buffer.size()) + " buffered bytes could not be written to " + s->path + " at close";
    host->log(ctx, SP_LOG_ERROR, message.c_str());
  }
  if (s->file != nullptr) std::fclose(s->file);
  delete s;
}

sp_status Init(const sp_host_api *h, sp_ctx *ctx, void **) {
  host = h;
  if (!SP_HOST_HAS(h, config_int64)) {
    h->set_error(ctx, "filesink needs a host with contract 1.3 (sinks, config_* routines)");
    return SP_ERROR;
  }
  return SP_OK;
}

const sp_sink_def sinks[] = {
    SP_SINK_DEF("filesink", SP_SINK_ENCODED, Validate, Open, Collect, Close),
};

void Describe(sp_plugin_descriptor *d) {
  d->init = Init;
  d->sinks = sinks;
  d->n_sinks = 1;
}

}  // namespace

STREAMPLUG_PLUGIN("filesink", "1.0.0", "sink:filesink", Describe)
