/* strand_native: the functions each source file gives the module (native/addon.c registers them). */
#ifndef STRAND_NATIVE_H
#define STRAND_NATIVE_H

#define NAPI_VERSION 8
#include <node_api.h>

napi_value Sendfile(napi_env env, napi_callback_info info);
napi_value PreadCached(napi_env env, napi_callback_info info);

#ifdef __linux__
#define STRAND_HAVE_SENDFILE 1
#else
#define STRAND_HAVE_SENDFILE 0
#endif

#endif
