{
  "targets": [
    {
      "target_name": "strand_native",
      "sources": ["native/sendfile.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
