{
  "targets": [
    {
      "target_name": "streamplug_host",
      "sources": [
        "native/host/addon.cc",
        "native/host/host_api.cc",
        "native/host/config.cc",
        "native/host/state_version.cc",
        "native/host/library.cc",
        "native/host/manifest.cc",
        "native/host/library_wrap.cc",
        "native/host/instance_wrap.cc",
        "native/host/frame_wrap.cc",
        "native/host/io.cc",
        "native/host/io_wrap.cc",
        "native/host/journal.cc",
        "native/host/journal_wrap.cc",
        "native/host/async_load.cc",
        "native/host/channel_wrap.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-ldl"]
    },
    {
      "target_name": "streamplug_worker",
      "type": "executable",
      "sources": [
        "native/worker/worker.cc",
        "native/host/library.cc",
        "native/host/host_api.cc",
        "native/host/config.cc",
        "native/host/state_version.cc",
        "native/host/io.cc",
        "native/host/journal.cc",
        "native/host/manifest.cc"
      ],
      "include_dirs": ["native/include"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-ldl", "-pthread"],
      "ldflags": ["-pthread"]
    }
  ]
}
