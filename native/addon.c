/*
 * strand_native: the broker's small native addon, built by `npm install` with node-gyp. Node has
 * no sendfile(2) (native/sendfile.c, the zero-copy fetch) and no RWF_NOWAIT read
 * (native/pread_cached.c, page-cache reads without the thread pool). Everything works without
 * the addon, only slower: the callers in src/native/addon.ts fall back to node:fs.
 */
#include "strand_native.h"

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn, supported;
  napi_create_function(env, "sendfile", NAPI_AUTO_LENGTH, Sendfile, NULL, &fn);
  napi_set_named_property(env, exports, "sendfile", fn);
  napi_get_boolean(env, STRAND_HAVE_SENDFILE, &supported);
  napi_set_named_property(env, exports, "supported", supported);
  napi_create_function(env, "preadCached", NAPI_AUTO_LENGTH, PreadCached, NULL, &fn);
  napi_set_named_property(env, exports, "preadCached", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
