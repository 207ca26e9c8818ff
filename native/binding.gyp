{
  "targets": [
    {
      "target_name": "daxkv",
      "sources": [
        "src/binding.cc",
        "src/crc32c.cc",
        "src/file.cc",
        "src/flush.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-Wall", "-Wextra"]
    }
  ]
}
