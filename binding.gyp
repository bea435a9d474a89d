{
  "targets": [
    {
      "target_name": "strand_native",
      "sources": ["native/addon.c", "native/sendfile.c", "native/pread_cached.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
