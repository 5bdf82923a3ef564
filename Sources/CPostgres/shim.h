#ifndef PASSERELLE_CPOSTGRES_SHIM_H
#define PASSERELLE_CPOSTGRES_SHIM_H
#include <libpq-fe.h>

/* Notices ("relation already exists, skipping") would go to stderr by default: the journal
   does not want them in the service's output. */
static void passerelle_pq_ignore_notice(void *arg, const char *message) { (void)arg; (void)message; }
static inline void passerelle_pq_silence_notices(PGconn *conn) {
    PQsetNoticeProcessor(conn, passerelle_pq_ignore_notice, NULL);
}
#endif
