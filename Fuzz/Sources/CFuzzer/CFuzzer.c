#include "CFuzzer.h"
#include <stdio.h>
#include <stdlib.h>

// libFuzzer's archive brings its own main, which needs this symbol. SwiftPM points `main` at
// the harness's main.swift, which drives libFuzzer through LLVMFuzzerRunDriver, so this is
// never called; if it is, the link went wrong and nothing would be fuzzed.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)data; (void)size;
    fputs("CFuzzer: libFuzzer's own main ran instead of the harness\n", stderr);
    abort();
}
