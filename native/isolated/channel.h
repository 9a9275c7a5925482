// The shared-memory channel between the host and one isolated plugin worker (native/worker).
//
// One memfd, mapped MAP_SHARED by both processes (the worker receives it as fd 3). The first
// kHeaderBytes hold the doorbells and one request/response slot; the rest is the arena, where the
// host (src/plugins/isolated) places argument columns, result columns, frames and payloads, and
// names them by offset. A batch crosses as one round trip: the host writes the request slot, bumps
// req_seq and wakes the worker; the worker runs the plugin over the columns in place and bumps
// resp_seq. Nothing is copied per row, and frames live in the arena for good.
//
// Wake-ups are futexes on the two sequence words (shared, not FUTEX_PRIVATE: two processes). Each
// side spins briefly before sleeping and sets its *_sleeping word first, so the other side makes
// the wake system call only when someone sleeps.
//
// Every slot is a uint32 so the TypeScript side reads and writes it through one Uint32Array.
// Layout changes bump kVersion; host and worker are always built together, so the check catches
// only a stale worker binary.
#ifndef STREAMPLUG_ISOLATED_CHANNEL_H
#define STREAMPLUG_ISOLATED_CHANNEL_H

#include <cstdint>

namespace streamplug {
namespace isolated {

constexpr uint32_t kMagic = 0x57495053u;  // 'SPIW'
constexpr uint32_t kVersion = 2;
constexpr uint32_t kHeaderBytes = 4096;

// uint32 slot indexes in the header (byte offset = 4 * index). Doorbells sit on their own cache lines.
enum Slot : uint32_t {
  kSlotMagic = 0,
  kSlotVersion = 1,
  kSlotReqSeq = 16,         // host bumps after writing a request
  kSlotWorkerSleeping = 17, // worker sets while in FUTEX_WAIT on req_seq
  kSlotRespSeq = 32,        // worker sets to req_seq when the response is written
  kSlotHostSleeping = 33,   // host sets while in FUTEX_WAIT on resp_seq
  kSlotOp = 48,             // request: Op
  kSlotId = 49,             // request: instance id
  kSlotArg0 = 50,
  kSlotArg1 = 51,
  kSlotArg2 = 52,
  kSlotArg3 = 53,
  kSlotStatus = 64,         // response: Status
  kSlotR0 = 65,
  kSlotR1 = 66,
  kSlotR2 = 67,
  kSlotMessageLength = 68,  // bytes of the message text at kMessageOffset
};
constexpr uint32_t kMessageOffset = 1024;  // response message text (UTF-8), up to kMessageCapacity
constexpr uint32_t kMessageCapacity = kHeaderBytes - kMessageOffset;

enum Op : uint32_t {
  kOpInstantiate = 1,  // id; arg0 function index; arg1/arg2 rule id (offset, length)
  kOpClose = 2,        // id: the function's close hook, state dropped
  kOpValidate = 3,     // arg0 function index; arg1/arg2 ValidateArgs (offset, length)
  kOpCall = 4,         // id; arg0 CallBlock offset; arg1 nrows
  kOpExportState = 5,  // id; arg0/arg1 out area (offset, capacity) -> r0 bytes (StateBlob)
  kOpImportState = 6,  // id; arg0/arg1 StateBlob (offset, length)
  kOpFetchResult = 7,  // arg0/arg1 out area for the string result kept after kStatusNeedSpace
  kOpShutdown = 8,     // close every ctx, deinit, exit 0
  kOpPing = 9,
  // Sources and sinks (io.cc's Source/Sink run in the worker; wakes go out as stdout lines
  // {"type":"wake","id":N}). Every io op answers with the instance's counters as JSON in the message.
  kOpIoOpen = 10,     // id; arg0 kind (1 source, 2 sink) | index << 8; arg1/arg2 IoOpen (offset, length)
  kOpIoStats = 11,    // id
  kOpSourceDrain = 12,// id; arg0/arg1 out area (offset, capacity); arg2 most items -> r0 bytes, r1 left (DrainBlock)
  kOpSinkPush = 13,   // id; arg0/arg1 batch (offset, length); arg2 nrows; arg3 1 JSON lines, 0 SinkColumns -> r0 0 taken, 1 full, 2 stopped
  kOpIoStop = 14,     // id: source: stop (close runs); sink: deliver what is queued, then close
  kOpIoAbandon = 15,  // id: sink: drop queued batches, close as soon as possible
  kOpIoDispose = 16,  // id: no more wakes; the instance is forgotten once its thread returned
  kOpIoValidate = 17, // arg0 kind | index << 8; arg1/arg2 config (offset, length): the validate hook
};

enum Status : uint32_t {
  kStatusOk = 0,
  kStatusPluginError = 1,  // the hook returned an error: message = its reason
  kStatusNeedSpace = 2,    // r0 = bytes needed (kOpCall string results, kOpExportState)
  kStatusBadRequest = 3,   // the host asked for something impossible: message says what
};

// Column as the arena holds it: offsets into the mapping, 0 = absent.
struct ColumnRef {
  uint32_t type;
  uint32_t is_constant;
  uint32_t values;   // fixed-width values
  uint32_t offsets;  // STRING/BYTES: nrows+1 uint32
  uint32_t data;     // STRING/BYTES bytes
  uint32_t nulls;    // one byte per row, or 0: the worker passes NULL when no byte is set
};

// A call: a generic batch (rewritten per call) or a frame (written once, run many times).
// Result: fixed-width types go to result_values/result_nulls, sized for the call by the host;
// STRING/BYTES results go to the out area as [nout+1 uint32 offsets][data], or kStatusNeedSpace.
struct CallBlock {
  uint32_t nargs;
  uint32_t result_type;
  uint32_t ngroups;        // aggregate: groups; 0 for a scalar call
  uint32_t group_offsets;  // aggregate: ngroups+1 uint32, or 0 (a frame of an aggregate: one group)
  uint32_t result_values;
  uint32_t result_nulls;
  uint32_t out;            // string results
  uint32_t out_capacity;
  ColumnRef args[1];       // nargs entries
};

// Validate payload: nargs, then per argument [type][is_literal][length][bytes, padded to 4].
// IoOpen: [rule length][config length][o0][o1][o2][o3], then rule and config bytes. Source: o0
//   queue capacity, o1 overflow (0 block, 1 drop-oldest, 2 drop-newest), o2 lines (1: recognise
//   canonical JSON objects), o3 items per segment. Sink: o0 queue capacity, o1 max retries (int32,
//   -1 forever), o2 first backoff ms, o3 max backoff ms.
// DrainBlock: [segment count], then per segment [kind][count][data bytes][count item ends into
//   data][data, padded to 4]. Kinds as io.h's SourceKind; raw messages are laid out as
//   "[m0,m1,...]" (ends point after each message, starts are end - length of the previous comma).
// SinkColumns: [column count], then per column [type][has nulls][name length][name, padded]
//   [values: nrows * width, or (nrows + 1) uint32 offsets then data, padded][nulls: nrows, padded].
// StateBlob: count, then per key [key length][key bytes][value length][value bytes], each padded to 4.

}  // namespace isolated
}  // namespace streamplug

#endif
