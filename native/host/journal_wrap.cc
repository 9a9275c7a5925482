// journalOpen(path): the crash journal for this process, and what the previous one left there.
#include "addon.h"

namespace streamplug {

Napi::Value JournalOpenJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return Throw(env, "E_USAGE", "journalOpen(path): expected a file path");
  JournalReport report;
  std::string error;
  if (!JournalOpen(info[0].As<Napi::String>().Utf8Value(), &report, &error)) return Throw(env, "E_JOURNAL", error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("existed", report.existed);
  o.Set("clean", report.clean);
  o.Set("previousPid", report.previous_pid);
  o.Set("startedAt", report.started_at);
  Napi::Array entries = Napi::Array::New(env, report.entries.size());
  for (size_t i = 0; i < report.entries.size(); ++i) {
    const JournalReport::Entry &e = report.entries[i];
    Napi::Object eo = Napi::Object::New(env);
    eo.Set("kind", e.kind);
    eo.Set("plugin", e.plugin);
    eo.Set("path", e.path);
    eo.Set("hook", e.hook);
    if (!e.rule.empty()) eo.Set("rule", e.rule);
    if (!e.signal.empty()) eo.Set("signal", e.signal);
    if (!e.address.empty()) eo.Set("address", e.address);
    if (!e.time.empty()) eo.Set("time", e.time);
    if (!e.line.empty()) eo.Set("line", e.line);
    Napi::Array bt = Napi::Array::New(env, e.backtrace.size());
    for (size_t k = 0; k < e.backtrace.size(); ++k) bt.Set(static_cast<uint32_t>(k), e.backtrace[k]);
    eo.Set("backtrace", bt);
    entries.Set(static_cast<uint32_t>(i), eo);
  }
  o.Set("entries", entries);
  return o;
}

}  // namespace streamplug
