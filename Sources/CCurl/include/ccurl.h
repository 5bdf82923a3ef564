#ifndef PASSERELLE_CCURL_H
#define PASSERELLE_CCURL_H
#include <curl/curl.h>

/* curl_easy_setopt, curl_easy_getinfo and curl_share_setopt are variadic: Swift cannot
   call them, so each argument type gets a fixed-arity shim. */
CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_write_function(CURL *handle, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode ccurl_setopt_read_function(CURL *handle, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode ccurl_setopt_header_function(CURL *handle, size_t (*fn)(char *, size_t, size_t, void *));
CURLcode ccurl_setopt_xferinfo_function(CURL *handle, int (*fn)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t));
CURLcode ccurl_setopt_seek_function(CURL *handle, int (*fn)(void *, curl_off_t, int));
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ccurl_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode ccurl_getinfo_string(CURL *handle, CURLINFO info, char **value);
CURLcode ccurl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

CURLSHcode ccurl_share_setopt_long(CURLSH *share, CURLSHoption option, long value);
CURLSHcode ccurl_share_setopt_pointer(CURLSH *share, CURLSHoption option, void *value);
CURLSHcode ccurl_share_setopt_lock_function(CURLSH *share, void (*fn)(CURL *, curl_lock_data, curl_lock_access, void *));
CURLSHcode ccurl_share_setopt_unlock_function(CURLSH *share, void (*fn)(CURL *, curl_lock_data, void *));
#endif
