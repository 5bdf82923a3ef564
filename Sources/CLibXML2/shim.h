#ifndef PASSERELLE_CLIBXML2_SHIM_H
#define PASSERELLE_CLIBXML2_SHIM_H
#include <stdarg.h>
#include <stdio.h>
#include <libxml/xmlversion.h>
/* Debian's libxml2 is built with ICU and encoding.h then pulls in the system ICU headers, whose
   UErrorCode clashes with Foundation's bundled ICU module. The only ICU-dependent declarations
   are the converter fields of xmlCharEncodingHandler, which no Swift code touches. */
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <libxml/c14n.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include <libxml/globals.h>

/* libxml2 keeps its error handlers in per-thread globals reached through macros, and the
   generic handler is variadic: Swift can use neither, so these helpers swap them. */

/* Receives one formatted generic-error message (the variadic handler formats it here). */
typedef void (*passerelle_xml_sink)(void *context, const char *message);

typedef struct {
    passerelle_xml_sink sink;
    void *context;
} passerelle_xml_generic_target;

static void passerelle_xml_generic_trampoline(void *ctx, const char *msg, ...) {
    char buffer[2048];
    va_list ap;
    va_start(ap, msg);
    vsnprintf(buffer, sizeof buffer, msg, ap);
    va_end(ap);
    passerelle_xml_generic_target *target = (passerelle_xml_generic_target *)ctx;
    if (target != NULL && target->sink != NULL) target->sink(target->context, buffer);
}

/* Swallows generic messages: installed between calls so nothing ever reaches stderr. */
static void passerelle_xml_generic_silent(void *ctx, const char *msg, ...) {
    (void)ctx; (void)msg;
}

/* The calling thread's handlers (the generic one kept as an opaque pointer). */
typedef struct {
    xmlStructuredErrorFunc structured;
    void *structuredContext;
    void *generic;
    void *genericContext;
} passerelle_xml_handlers;

static inline passerelle_xml_handlers passerelle_xml_get_handlers(void) {
    passerelle_xml_handlers h;
    h.structured = xmlStructuredError;
    h.structuredContext = xmlStructuredErrorContext;
    h.generic = (void *)xmlGenericError;
    h.genericContext = xmlGenericErrorContext;
    return h;
}

static inline void passerelle_xml_set_handlers(passerelle_xml_handlers h) {
    xmlSetStructuredErrorFunc(h.structuredContext, h.structured);
    xmlSetGenericErrorFunc(h.genericContext, (xmlGenericErrorFunc)h.generic);
}

/* Routes the calling thread's generic messages to `target` (NULL: silence them). */
static inline void passerelle_xml_set_generic_target(passerelle_xml_generic_target *target) {
    if (target != NULL) xmlSetGenericErrorFunc(target, passerelle_xml_generic_trampoline);
    else xmlSetGenericErrorFunc(NULL, passerelle_xml_generic_silent);
}

static inline void passerelle_xml_free(void *p) { xmlFree(p); }
#endif
