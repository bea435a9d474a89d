/*
 * strand_native: sendfile(2) for the broker's fetch path (Kafka's FileRecords.writeTo uses
 * FileChannel.transferTo, which is sendfile on Linux). Node has no sendfile, so without this the
 * broker copies every fetched byte from the page cache into a buffer and again into the socket.
 *
 *   sendfile(socketFd, fileFd, position, length, pollMs) -> Promise<number of bytes sent>
 *
 * The copy runs on libuv's thread pool. The socket descriptor is dup()ed on the calling thread
 * before the work is queued, so the socket cannot be closed (and its number reused) under the
 * worker; the duplicate is closed when the work ends. The socket is non-blocking (libuv owns it):
 * when its send buffer is full the worker poll()s for POLLOUT for at most `pollMs`, and resolves
 * with a short count if the peer is not reading, so a slow consumer never holds a pool thread
 * for long; the caller decides how to wait and continue.
 */
#include "strand_native.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <unistd.h>
#endif

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int out_fd;
  int in_fd;
  int64_t position;
  int64_t length;
  int poll_ms;
  int64_t sent;
  int error;
} sendfile_job;

#if STRAND_HAVE_SENDFILE
static void execute(napi_env env, void* data) {
  (void)env;
  sendfile_job* job = (sendfile_job*)data;
  off_t offset = (off_t)job->position;
  while (job->sent < job->length) {
    int64_t want = job->length - job->sent;
    if (want > 0x7ffff000) want = 0x7ffff000;
    ssize_t n = sendfile(job->out_fd, job->in_fd, &offset, (size_t)want);
    if (n > 0) {
      job->sent += n;
      continue;
    }
    if (n == 0) {
      /* The file ended before the range did: the caller's range is wrong. */
      job->error = ENODATA;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p;
      p.fd = job->out_fd;
      p.events = POLLOUT;
      p.revents = 0;
      int r = poll(&p, 1, job->poll_ms);
      if (r > 0) continue; /* writable, or an error the next sendfile reports */
      if (r == 0) break;   /* the peer is not reading: return what was sent */
      if (errno == EINTR) continue;
      job->error = errno;
      break;
    }
    job->error = errno;
    break;
  }
  close(job->out_fd);
}
#endif

static void complete(napi_env env, napi_status status, void* data) {
  sendfile_job* job = (sendfile_job*)data;
  if (status == napi_ok && job->error == 0) {
    napi_value sent;
    napi_create_double(env, (double)job->sent, &sent);
    napi_resolve_deferred(env, job->deferred, sent);
  } else {
    int err = job->error != 0 ? job->error : EIO;
    char message[160];
    snprintf(message, sizeof message, "sendfile: %s after %lld bytes", strerror(err), (long long)job->sent);
    napi_value msg, error, code;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &error);
    napi_create_int32(env, err, &code);
    napi_set_named_property(env, error, "errno", code);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char* message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

napi_value Sendfile(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) {
    return throw_type_error(env, "sendfile(socketFd, fileFd, position, length, pollMs)");
  }
  int32_t out_fd, in_fd, poll_ms;
  int64_t position, length;
  if (napi_get_value_int32(env, argv[0], &out_fd) != napi_ok || napi_get_value_int32(env, argv[1], &in_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int32(env, argv[4], &poll_ms) != napi_ok || out_fd < 0 || in_fd < 0 || position < 0 || length < 0 || poll_ms < 0) {
    return throw_type_error(env, "sendfile: descriptors, position, length and pollMs must be non-negative integers");
  }
#if STRAND_HAVE_SENDFILE
  int dup_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  sendfile_job* job = (sendfile_job*)calloc(1, sizeof(sendfile_job));
  if (job == NULL) {
    close(dup_fd);
    napi_throw_error(env, NULL, "sendfile: out of memory");
    return NULL;
  }
  job->out_fd = dup_fd;
  job->in_fd = in_fd;
  job->position = position;
  job->length = length;
  job->poll_ms = poll_ms;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "strand:sendfile", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
#else
  napi_throw_error(env, NULL, "sendfile is not supported on this platform");
  return NULL;
#endif
}
