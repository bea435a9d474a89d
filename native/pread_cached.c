/*
 * strand_native: a read that only succeeds from the page cache.
 *
 *   preadCached(fd, buffer, offset, length, position) -> bytes read, or -errno
 *
 * preadv2(2) with RWF_NOWAIT, synchronously on the calling (event-loop) thread. It copies what is
 * already cached and never waits for the disk: when the first page is not cached it fails with
 * EAGAIN, and when only a prefix is cached it returns that prefix (a short count). 0 means the
 * position is at or past the end of the file. The caller reads the rest through libuv's thread
 * pool as before, so a fetch of recent (cached) data costs one system call instead of a trip
 * through the pool and back, and a fetch of cold data never stalls the event loop on the disk.
 * A kernel or file system without RWF_NOWAIT answers EOPNOTSUPP (or ENOSYS): the caller stops
 * asking.
 */
#define _GNU_SOURCE
#include "strand_native.h"

#include <errno.h>
#include <stdint.h>

#ifdef __linux__
#include <sys/uio.h>
#endif

napi_value PreadCached(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) {
    napi_throw_type_error(env, NULL, "preadCached(fd, buffer, offset, length, position)");
    return NULL;
  }
  int32_t fd;
  int64_t offset, length, position;
  void* data = NULL;
  size_t size = 0;
  bool is_buffer = false;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok || napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || napi_get_value_int64(env, argv[4], &position) != napi_ok || fd < 0 ||
      offset < 0 || length < 0 || position < 0 || (uint64_t)offset + (uint64_t)length > size) {
    napi_throw_range_error(env, NULL, "preadCached: a descriptor, a buffer, and a non-negative range inside the buffer");
    return NULL;
  }
  double result;
#if defined(__linux__) && defined(RWF_NOWAIT)
  struct iovec iov;
  iov.iov_base = (char*)data + offset;
  iov.iov_len = (size_t)length;
  ssize_t n;
  do {
    n = preadv2(fd, &iov, 1, (off_t)position, RWF_NOWAIT);
  } while (n < 0 && errno == EINTR);
  result = n >= 0 ? (double)n : -(double)errno;
#else
  (void)data;
  result = -(double)ENOSYS;
#endif
  napi_value out;
  napi_create_double(env, result, &out);
  return out;
}
