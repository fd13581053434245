/* pg.c: the store's PostgreSQL driver (store_driver_postgresql) over
 * libpq: one PGconn per st_conn, the common dialect's ?N parameters
 * rewritten to $N, values sent and read in binary, transactions, the
 * classification of errors and the re-opening of a dropped connection.
 *
 * DESIGN
 * - One st_conn = one PGconn, used by one thread at a time (libpq is
 *   thread-safe across connections). The server keeps one per request
 *   thread and worker, as with SQLite (app.c's connection pool).
 * - Statements: prepare only rewrites the SQL (pg_sql.h: ?N -> $k,
 *   numbered in the order of first appearance, so that a statement variant
 *   that leaves a parameter out still sends a dense list); the first step
 *   sends it with its bound values, asking for binary results. Integers
 *   travel as int8, reals as float8 (bit for bit: no decimal rounding, so
 *   that metrics read back are the numbers written), BLOBs as bytea, text
 *   as text; a NULL parameter is left untyped for the server to infer.
 * - Prepared once per connection: the first use of a statement text with
 *   a given list of parameter types sends a Parse under a name of this
 *   connection (PQsendPrepare), every later use only Bind and Execute
 *   (PQsendQueryPrepared), so that the server parses and analyses each
 *   statement once per connection, not once per use. The names live in
 *   a hash table of the connection (at most PG_PREP_MAX; past that a
 *   statement goes unnamed, parsed each time); a name counts only once the
 *   server has answered its Parse, and the table is emptied when the
 *   connection is re-opened (the server forgot them).
 * - Round trips: statements, BEGIN and COMMIT are sent in libpq's
 *   pipeline mode (PostgreSQL 14's libpq; any server of protocol 3); only
 *   constant text (exec: the session's SETs, migrations, ROLLBACK) goes by
 *   PQexec, after what is queued. A statement whose result is
 *   waited for (a step) sends what is queued, itself and a Sync, then
 *   reads every result up to the Sync: one round trip. BEGIN of a read or
 *   write transaction is only queued, and so are the statements the store
 *   runs with st_step_later (the writes of a period whose result it does
 *   not read) and COMMIT waits for all of them: a period end, BEGIN and
 *   SELECT ... FOR UPDATE of the run, then its 3-6 writes and COMMIT, is
 *   two round trips, where one per statement made 6-9. A queued
 *   statement's error surfaces at the next wait (the server skips the
 *   rest up to the Sync, COMMIT included: nothing of the transaction is
 *   committed), and the caller rolls back as after any failed statement.
 *   Queued statements send their parameters at once (libpq copies them),
 *   so the caller may free what it bound as soon as the call returns.
 * - Durability is the server's, unchanged: each COMMIT waits for the
 *   server's synchronous_commit (on by default: the commit is flushed to
 *   disk), so a period the store reports stored survives a crash of
 *   mnistd, of PostgreSQL and, with fsync on, of the machine.
 * - Transactions: ST_TX_WRITE is a plain BEGIN (READ COMMITTED); the store
 *   locks the rows it reads before changing them (SELECT ... FOR UPDATE),
 *   and a claim skips the rows other claimers hold (FOR UPDATE SKIP
 *   LOCKED), so that two workers, in one process or in two, never take the
 *   same run. ST_TX_READ is REPEATABLE READ READ ONLY (one snapshot).
 *   ST_TX_MIGRATE also takes a transaction-level advisory lock
 *   (pg_advisory_xact_lock), held until COMMIT: several processes starting
 *   at once on an empty database migrate once and all start.
 * - Session: lock_timeout 10 s (SQLite's busy_timeout), notices silenced,
 *   connect_timeout 5 s unless the URI says otherwise, and
 *   default_toast_compression lz4 where the server has it (PostgreSQL 14+
 *   built with lz4, as Debian's packages and the official images are):
 *   checkpoints and weight snapshots (bytea of 80 KB to 1 MB, float
 *   weights that do not compress: zlib keeps 93-97% of them) are
 *   compressed when stored out of line, and pglz, the default, spent
 *   ~5 ms of server time on each period's 79 KB snapshot of the dnn
 *   recipe before giving up, lz4 a fraction of that (bench/NOTES.md).
 * - A dropped connection (the server restarted) is re-opened on the next
 *   use: before a statement, and once more when a statement outside a
 *   transaction, or the first of a transaction (sent with its BEGIN),
 *   fails because the connection broke (nothing of it was committed; the
 *   retry is the whole statement, with its BEGIN). Later in a transaction
 *   the statement fails: the caller sees STORE_UNAVAILABLE and tries
 *   again.
 * - Errors are transient (STORE_UNAVAILABLE) when the connection is lost
 *   or cannot be made, when the error has no SQLSTATE (a client-side or
 *   communication failure), or for SQLSTATE classes 08 (connection), 53
 *   (insufficient resources), 57 (operator intervention: shutdown,
 *   cannot connect now), 58 (system, I/O), and 40001, 40P01 (serialization
 *   failure, deadlock), 55P03 (lock not available).
 * - Signals (store_listen): a connection of its own per node LISTENs on
 *   "<schema>.mnistd" (the channel of 0008's triggers: one per schema, as
 *   River prefixes its topics with the schema). wait_signal waits in
 *   libpq's way (PQsocket, poll, PQconsumeInput, PQnotifies); when the
 *   connection breaks (the server restarted) it is re-opened and LISTENs
 *   again, and the caller hears STORE_SIG_RESYNC, as notifications sent
 *   meanwhile are lost (graphile-worker, too, re-LISTENs with a backoff and
 *   then looks for work). A listener that heard nothing for 5 s pings
 *   (SELECT 1), so that a connection that died without a word is noticed
 *   (River's notifier pings every 5 s). */
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store/pg_sql.h"
#include "server/store/store_internal.h"

#define PG_MAX_PARAMS PG_SQL_MAX_PARAMS
#define PG_QUEUE_MAX 64     /* results owed in one pipeline before a Sync */
#define PG_PREP_MAX 1024    /* named statements kept per connection */
#define PG_CONNECT_TIMEOUT "5"    /* seconds, unless the URI sets one */
/* the advisory lock key of migrations ("mnistd" in ASCII) */
#define PG_MIGRATE_LOCK "120282592404580"
/* the first key of the owners' advisory locks ("mnow" in ASCII) */
#define PG_OWNER_LOCK "1835954039"

/* type OIDs (pg_type.dat; stable across releases) */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20,
    OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_FLOAT4 = 700,
    OID_FLOAT8 = 701, OID_UNKNOWN = 705, OID_VARCHAR = 1043,
};

/* A statement prepared on the connection (see DESIGN). */
typedef struct pg_prep {
    char *key;          /* owned: parameter type codes, '|', the SQL */
    uint64_t hash;      /* of key */
    unsigned id;        /* its name on the server: "mn<id>" */
    int state;          /* PREP_NONE, PREP_SENT (Parse queued), PREP_READY */
} pg_prep;

enum { PREP_NONE, PREP_SENT, PREP_READY };

struct st_conn {
    PGconn *pg;         /* owned */
    /* prepared statements (see DESIGN): an open-addressed table of owned
     * entries */
    pg_prep **preps;    /* owned; cap slots, NULL free */
    size_t preps_cap, preps_n;
    unsigned next_id;   /* the next statement name's number */
    /* the pipeline: per result the server owes, in order, the entry whose
     * Parse it answers, or NULL for a statement's */
    pg_prep *queue[PG_QUEUE_MAX];
    int queued;
    const char *begin;  /* the BEGIN text when it alone is queued */
    int stale;          /* the pipeline lost track: reset before reuse */
    char msg[512];      /* the last error, one line */
    int transient;      /* the last error's class */
    int64_t changes;    /* rows changed by the last statement */
    char *listen_sql;   /* a listener's LISTEN statement (owned), or NULL */
    int64_t quiet_ms;   /* a listener's wait without traffic since the
                           last ping */
};

typedef struct pg_stmt {
    st_stmt base;       /* first: the helpers' view */
    st_conn *c;         /* borrowed */
    char *sql;          /* rewritten ($k), owned */
    int nparams;        /* distinct parameters in the SQL */
    int map[PG_MAX_PARAMS + 1];   /* ?N -> $k - 1, or -1 when absent */
    Oid types[PG_MAX_PARAMS];
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    unsigned char num[PG_MAX_PARAMS][8];   /* int8/float8, big-endian */
    PGresult *res;      /* owned, after the first step */
    int row;            /* rows returned so far */
    int queued;         /* sent by step_later: its steps return done */
} pg_stmt;

#define PS(st) ((pg_stmt *)(st))

/* ----------------------------------------------------------- errors */

/* Copies text into c->msg on one line (newlines and tabs become spaces,
 * runs of spaces one, trailing space dropped). */
static void set_msg(st_conn *c, const char *text)
{
    size_t n = 0;
    for (const char *p = text ? text : "unknown error";
         *p && n + 1 < sizeof c->msg; p++) {
        char ch = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        if (ch == ' ' && (n == 0 || c->msg[n - 1] == ' ')) continue;
        c->msg[n++] = ch;
    }
    while (n && c->msg[n - 1] == ' ') n--;
    c->msg[n] = '\0';
}

/* Whether a SQLSTATE (NULL: none) is transient (see DESIGN). */
static int sqlstate_transient(const char *st)
{
    if (!st || strlen(st) != 5) return 1;
    if (!strncmp(st, "08", 2) || !strncmp(st, "53", 2) ||
        !strncmp(st, "57", 2) || !strncmp(st, "58", 2))
        return 1;
    return !strcmp(st, "40001") || !strcmp(st, "40P01") ||
           !strcmp(st, "55P03");
}

/* Records the error of res (NULL: of the connection). */
static void set_error(st_conn *c, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    set_msg(c, m && *m ? m : PQerrorMessage(c->pg));
    c->transient = PQstatus(c->pg) != CONNECTION_OK ||
                   sqlstate_transient(
                       res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL);
}

static const char *pg_errmsg(st_conn *c) { return c->msg; }
static int pg_transient(st_conn *c) { return c->transient; }

/* ------------------------------------------------------- connections */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Session settings, after every connect and reset. 0 or -1. */
static int session_setup(st_conn *c)
{
    PQsetNoticeProcessor(c->pg, quiet_notices, NULL);
    PGresult *r = PQexec(c->pg, "SET lock_timeout = '10s';"
                                " SET client_min_messages = warning");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_error(c, r);
    PQclear(r);
    if (!ok) return -1;
    /* best effort (see DESIGN): a server built without lz4 refuses it and
     * keeps pglz */
    PQclear(PQexec(c->pg, "SET default_toast_compression = lz4"));
    return 0;
}

/* Forgets every prepared statement (the connection was re-opened). */
static void preps_clear(st_conn *c)
{
    for (size_t i = 0; i < c->preps_cap; i++) {
        if (c->preps[i]) free(c->preps[i]->key);
        free(c->preps[i]);
    }
    free(c->preps);
    c->preps = NULL;
    c->preps_cap = c->preps_n = 0;
    c->next_id = 0;
}

/* Re-opens a connection that broke (see DESIGN). 0 or -1. */
static int reconnect(st_conn *c)
{
    preps_clear(c);
    c->queued = 0;
    c->begin = NULL;
    c->stale = 0;
    PQreset(c->pg);   /* also leaves pipeline mode */
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_error(c, NULL);
        c->transient = 1;
        return -1;
    }
    return session_setup(c);
}

/* Before a statement: a broken connection is re-opened (never one that
 * a pipeline still owes results). */
static int ensure(st_conn *c)
{
    if (c->queued) return 0;
    return PQstatus(c->pg) == CONNECTION_OK && !c->stale ? 0 : reconnect(c);
}

static int result_ok(const PGresult *r)
{
    ExecStatusType t = PQresultStatus(r);
    return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* ---------------------------------------------------------- pipeline */

/* FNV-1a, 64-bit (Fowler, Noll, Vo). */
static uint64_t fnv1a(const char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The parameter type code of slot k (the key distinguishes typings: a
 * statement prepared with a NULL's inferred type cannot take an int8). */
static char type_code(Oid t)
{
    switch (t) {
    case OID_INT8: return 'i';
    case OID_FLOAT8: return 'd';
    case OID_BYTEA: return 'b';
    case OID_TEXT: return 't';
    default: return 'n';
    }
}

/* Puts e in the table (its slot free, cap a power of two). */
static void preps_place(pg_prep **tab, size_t cap, pg_prep *e)
{
    size_t i = (size_t)e->hash & (cap - 1);
    while (tab[i]) i = (i + 1) & (cap - 1);
    tab[i] = e;
}

/* The entry of statement s on c, added (PREP_NONE) when new; NULL when
 * the table is full or memory is short (the statement then goes
 * unnamed). */
static pg_prep *prep_of(st_conn *c, const pg_stmt *s)
{
    char codes[PG_MAX_PARAMS + 1];
    for (int k = 0; k < s->nparams; k++) codes[k] = type_code(s->types[k]);
    codes[s->nparams] = '|';
    size_t nc = (size_t)s->nparams + 1, nsql = strlen(s->sql);
    uint64_t h = fnv1a(s->sql, nsql, fnv1a(codes, nc, 0xcbf29ce484222325ULL));
    for (size_t i = c->preps_cap ? (size_t)h & (c->preps_cap - 1) : 0;
         c->preps_cap && c->preps[i]; i = (i + 1) & (c->preps_cap - 1)) {
        pg_prep *e = c->preps[i];
        if (e->hash == h && !memcmp(e->key, codes, nc) &&
            !strcmp(e->key + nc, s->sql))
            return e;
    }
    if (c->preps_n >= PG_PREP_MAX) return NULL;
    if ((c->preps_n + 1) * 2 > c->preps_cap) {   /* load at most 1/2 */
        size_t cap = c->preps_cap ? c->preps_cap * 2 : 64;
        pg_prep **tab = calloc(cap, sizeof *tab);
        if (!tab) return NULL;
        for (size_t i = 0; i < c->preps_cap; i++)
            if (c->preps[i]) preps_place(tab, cap, c->preps[i]);
        free(c->preps);
        c->preps = tab;
        c->preps_cap = cap;
    }
    pg_prep *e = calloc(1, sizeof *e);
    char *key = malloc(nc + nsql + 1);
    if (!e || !key) {
        free(e);
        free(key);
        return NULL;
    }
    memcpy(key, codes, nc);
    memcpy(key + nc, s->sql, nsql + 1);
    e->key = key;
    e->hash = h;
    e->id = c->next_id++;
    e->state = PREP_NONE;
    preps_place(c->preps, c->preps_cap, e);
    c->preps_n++;
    return e;
}

/* Reads the results the pipeline owes, up to and including the Sync
 * that the caller sent, and leaves pipeline mode. *last (when non-NULL)
 * receives the last statement's result (owned) when every result was a
 * success, else NULL. The first failure's error is recorded; changes
 * counts the last statement's rows. 0 or -1. */
static int pipe_collect(st_conn *c, PGresult **last)
{
    int failed = 0;
    if (last) *last = NULL;
    for (int i = 0; i < c->queued; i++) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {   /* the connection broke: nothing more comes */
            if (!failed) set_error(c, NULL);
            failed = 1;
            c->stale = 1;
            break;
        }
        int ok = result_ok(r);
        pg_prep *e = c->queue[i];
        if (e) e->state = ok ? PREP_READY : PREP_NONE;
        if (!ok && !failed) {
            set_error(c, r);
            failed = 1;
        }
        if (ok && !e) {
            const char *n = PQcmdTuples(r);
            c->changes = n && *n ? atoll(n) : 0;
        }
        if (ok && !failed && last && i == c->queued - 1) {
            *last = r;
        } else {
            PQclear(r);
        }
        /* the NULL that ends this result's command */
        while ((r = PQgetResult(c->pg))) {
            if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) c->stale = 1;
            PQclear(r);
        }
    }
    for (int i = 0; i < c->queued; i++)   /* Parses never answered */
        if (c->queue[i] && c->queue[i]->state == PREP_SENT)
            c->queue[i]->state = PREP_NONE;
    c->queued = 0;
    c->begin = NULL;
    if (!c->stale) {
        PGresult *r = PQgetResult(c->pg);
        if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            if (!failed) set_error(c, r);
            failed = 1;
            c->stale = 1;
        }
        PQclear(r);
    }
    if (!PQexitPipelineMode(c->pg)) c->stale = 1;
    if (failed && last && *last) {
        PQclear(*last);
        *last = NULL;
    }
    if (c->stale) {   /* a lost pipeline: the connection is re-opened */
        if (!failed) set_error(c, NULL);
        c->transient = 1;
        failed = 1;
    }
    return failed ? -1 : 0;
}

/* Queues sql (with the parameters of s when non-NULL; else one statement
 * without parameters) on the pipeline, entering pipeline mode first,
 * preceded by its Parse the first time. 0, or -1 with the pipeline
 * collected (the error recorded). */
static int pipe_send(st_conn *c, const char *sql, pg_stmt *s)
{
    if (c->queued + 2 > PG_QUEUE_MAX) {   /* full: wait for what it owes */
        if (!PQpipelineSync(c->pg)) {
            set_error(c, NULL);
            c->stale = 1;
        }
        if (pipe_collect(c, NULL)) return -1;
    }
    if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF &&
        !PQenterPipelineMode(c->pg)) {
        set_error(c, NULL);
        c->stale = 1;
        return -1;
    }
    int ok;
    pg_prep *e = s ? prep_of(c, s) : NULL;
    if (e) {
        char name[16];
        snprintf(name, sizeof name, "mn%u", e->id);
        if (e->state == PREP_NONE) {
            if (!PQsendPrepare(c->pg, name, sql, s->nparams, s->types))
                goto fail;
            e->state = PREP_SENT;
            c->queue[c->queued++] = e;
        }
        ok = PQsendQueryPrepared(c->pg, name, s->nparams, s->values,
                                 s->lengths, s->formats, 1);
    } else {
        ok = PQsendQueryParams(c->pg, sql, s ? s->nparams : 0,
                               s ? s->types : NULL, s ? s->values : NULL,
                               s ? s->lengths : NULL, s ? s->formats : NULL,
                               1);
    }
    if (!ok) goto fail;
    c->queue[c->queued++] = NULL;
    c->begin = NULL;
    return 0;
fail:
    set_error(c, NULL);
    if (!PQpipelineSync(c->pg)) c->stale = 1;
    pipe_collect(c, NULL);
    set_error(c, NULL);   /* the send's own error, not the collect's */
    c->transient = 1;
    return -1;
}

/* Sends Sync and collects the pipeline (pipe_collect). 0 or -1. */
static int pipe_wait(st_conn *c, PGresult **last)
{
    if (last) *last = NULL;
    if (!c->queued) {
        if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
            PQexitPipelineMode(c->pg);
        return 0;
    }
    if (!PQpipelineSync(c->pg)) {
        set_error(c, NULL);
        c->stale = 1;
    }
    return pipe_collect(c, last);
}

/* Sends sql (with the parameters of s when non-NULL: one statement) after
 * what is queued, and returns its result (owned; NULL on failure, with
 * the error recorded): one round trip. Retries once on a fresh
 * connection when the connection broke outside a transaction or at its
 * first statement (the BEGIN is sent again). */
static PGresult *pg_run(st_conn *c, const char *sql, pg_stmt *s)
{
    if (ensure(c)) return NULL;
    for (int attempt = 0;; attempt++) {
        const char *begin = c->begin;
        int fresh = begin || (!c->queued &&
                              PQtransactionStatus(c->pg) == PQTRANS_IDLE);
        PGresult *r = NULL;
        if (!pipe_send(c, sql, s) && !pipe_wait(c, &r)) return r;
        if (attempt || !fresh ||
            (PQstatus(c->pg) == CONNECTION_OK && !c->stale))
            return NULL;
        if (reconnect(c)) return NULL;
        if (begin) {
            if (pipe_send(c, begin, NULL)) return NULL;
            c->begin = begin;
        }
    }
}

/* Sends sql and returns its result (owned; NULL on failure, with the
 * error recorded): with the parameters of s when non-NULL (pg_run), else
 * as constant text of any number of statements (the simple protocol,
 * outside pipeline mode, after what is queued). Retries once on a fresh
 * connection when the connection broke outside a transaction. */
static PGresult *pg_send(st_conn *c, const char *sql, pg_stmt *s)
{
    if (s) return pg_run(c, sql, s);
    if (c->queued && pipe_wait(c, NULL)) return NULL;
    if (ensure(c)) return NULL;
    for (int attempt = 0;; attempt++) {
        int idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
        PGresult *r = PQexec(c->pg, sql);
        if (r && result_ok(r)) {
            const char *n = PQcmdTuples(r);
            c->changes = n && *n ? atoll(n) : 0;
            return r;
        }
        set_error(c, r);
        PQclear(r);
        if (attempt || !idle || PQstatus(c->pg) == CONNECTION_OK) return NULL;
        if (reconnect(c)) return NULL;
    }
}

static void pg_close(st_conn *c)
{
    if (!c) return;
    preps_clear(c);
    PQfinish(c->pg);
    free(c->listen_sql);
    free(c);
}

/* Opens the database of a postgresql:// URI. Bad URIs, unreachable
 * servers, wrong passwords and missing databases fail here with libpq's
 * reason on one line; the message names the database and host, never
 * the password. */
static int pg_open(st_conn **out, const char *uri, mn_err *err)
{
    int rc = -1;
    char *why = NULL;
    st_conn *c = NULL;

    *out = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &why);
    if (!opts) {
        st_conn tmp = {0};
        set_msg(&tmp, why ? why : "out of memory");
        mn_errf(err, "store: bad PostgreSQL URI: %s", tmp.msg);
        goto done;
    }
    PQconninfoFree(opts);
    c = calloc(1, sizeof *c);
    if (!c) {
        mn_errf(err, "store: open PostgreSQL: out of memory");
        goto done;
    }
    /* the URI comes after the defaults: what it says wins */
    const char *keys[] = {"connect_timeout", "application_name", "dbname",
                          NULL};
    const char *vals[] = {PG_CONNECT_TIMEOUT, "mnistd", uri, NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg) {
        mn_errf(err, "store: open PostgreSQL: out of memory");
        goto done;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_msg(c, PQerrorMessage(c->pg));
        const char *db = PQdb(c->pg), *host = PQhost(c->pg);
        mn_errf(err, "store: cannot connect to PostgreSQL database '%s' "
                "on %s: %s", db ? db : "?", host && *host ? host : "?",
                c->msg);
        goto done;
    }
    if (session_setup(c)) {
        mn_errf(err, "store: PostgreSQL session set-up: %s", c->msg);
        goto done;
    }
    *out = c;
    c = NULL;
    rc = 0;
done:
    PQfreemem(why);
    pg_close(c);
    return rc;
}

static int pg_exec(st_conn *c, const char *sql)
{
    PGresult *r = pg_send(c, sql, NULL);
    PQclear(r);
    return r ? 0 : -1;
}

/* Read and write transactions: BEGIN is queued, sent with the first
 * statement (see DESIGN); a migration's runs at once. */
static int pg_begin(st_conn *c, int kind)
{
    if (kind == ST_TX_MIGRATE)
        return pg_exec(c, "BEGIN; SELECT pg_advisory_xact_lock("
                          PG_MIGRATE_LOCK ")");
    const char *sql = kind == ST_TX_READ
                          ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                          : "BEGIN";
    if (ensure(c)) return -1;
    int alone = !c->queued;
    if (pipe_send(c, sql, NULL)) return -1;
    if (alone) c->begin = sql;
    return 0;
}

/* COMMIT after what is queued, in the same round trip. A transaction the
 * server had already aborted answers ROLLBACK, not an error: that is one
 * here. */
static int pg_commit(st_conn *c)
{
    PGresult *r = pg_run(c, "COMMIT", NULL);
    if (!r) return -1;
    int ok = !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok) {
        set_msg(c, "the transaction was rolled back");
        c->transient = 0;
    }
    PQclear(r);
    return ok ? 0 : -1;
}

static int pg_rollback(st_conn *c)
{
    if (c->queued) pipe_wait(c, NULL);   /* their errors do not matter */
    if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) return 0;
    return pg_exec(c, "ROLLBACK");
}

static int pg_in_tx(st_conn *c)
{
    if (!c || !c->pg) return 0;
    if (c->queued) return 1;   /* a queued BEGIN at least */
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR ||
           t == PQTRANS_ACTIVE;
}

static int64_t pg_changes(st_conn *c) { return c->changes; }

static int pg_maintain(st_conn *c, mn_err *err)
{
    (void)c; /* the server's autovacuum does PostgreSQL's housekeeping */
    (void)err;
    return 0;
}

/* ----------------------------------------------------------- signals */

/* A listener pings its server after this long without traffic, so that a
 * connection that died silently (a network gone, no FIN) is noticed and
 * re-opened, as River's notifier pings every 5 s. */
#define PG_LISTEN_PING_MS 5000

/* Runs the listener's LISTEN (again, after a re-open: a new session
 * listens to nothing). 0 or -1. */
static int relisten(st_conn *c)
{
    PGresult *r = PQexec(c->pg, c->listen_sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_error(c, r);
    PQclear(r);
    return ok ? 0 : -1;
}

/* LISTEN "<schema>.mnistd": the channel of the triggers of
 * migrations/postgresql/0008 (current_schema() there and here: the
 * search_path of the URI names the same schema). */
static int pg_listen(st_conn *c)
{
    int rc = -1;
    char *ident = NULL;
    PGresult *r = pg_send(c, "SELECT current_schema()", NULL);
    if (!r) return -1;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        set_msg(c, "no current schema (search_path names none that exists)");
        c->transient = 0;
        goto done;
    }
    char chan[128];
    int n = snprintf(chan, sizeof chan, "%s.mnistd", PQgetvalue(r, 0, 0));
    if (n < 0 || (size_t)n >= sizeof chan) {
        set_msg(c, "schema name too long for a channel");
        c->transient = 0;
        goto done;
    }
    ident = PQescapeIdentifier(c->pg, chan, strlen(chan));
    if (!ident) {
        set_error(c, NULL);
        goto done;
    }
    free(c->listen_sql);
    size_t len = strlen(ident) + sizeof "LISTEN ";
    c->listen_sql = malloc(len);
    if (!c->listen_sql) {
        set_msg(c, "out of memory");
        c->transient = 1;
        goto done;
    }
    snprintf(c->listen_sql, len, "LISTEN %s", ident);
    rc = relisten(c);
    c->quiet_ms = 0;
done:
    PQfreemem(ident);
    PQclear(r);
    return rc;
}

/* A broken listener connection: re-open it and listen again. 2 (what
 * wait_signal returns then) or -1 (transient: the server is not back). */
static int listener_reopen(st_conn *c)
{
    if (reconnect(c) || relisten(c)) {
        c->transient = 1;
        return -1;
    }
    c->quiet_ms = 0;
    return 2;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* libpq's way of waiting for notifications (its documentation, "Asynchronous
 * Notification"): poll the connection's socket, PQconsumeInput, then
 * PQnotifies. */
static int pg_wait_signal(st_conn *c, int timeout_ms, char *buf, size_t cap)
{
    if (!c->listen_sql) {
        set_msg(c, "not a listener (store_listen)");
        c->transient = 0;
        return -1;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) return listener_reopen(c);
    PGnotify *n = PQnotifies(c->pg);
    if (!n) {
        int64_t t0 = mono_ms();
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        int r = p.fd < 0 ? -1 : poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR) {
            set_msg(c, p.fd < 0 ? "no socket" : strerror(errno));
            c->transient = 1;
            return listener_reopen(c);
        }
        if (r > 0) {
            c->quiet_ms = 0;
            if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
                return listener_reopen(c);   /* the server went away */
            n = PQnotifies(c->pg);
        } else {
            c->quiet_ms += mono_ms() - t0;
            if (c->quiet_ms >= PG_LISTEN_PING_MS) {
                c->quiet_ms = 0;
                PGresult *pr = PQexec(c->pg, "SELECT 1");
                int ok = PQresultStatus(pr) == PGRES_TUPLES_OK;
                PQclear(pr);
                if (!ok || PQstatus(c->pg) != CONNECTION_OK)
                    return listener_reopen(c);
                n = PQnotifies(c->pg);   /* any that came with the reply */
            }
        }
    }
    if (!n) return 0;
    snprintf(buf, cap, "%s", n->extra ? n->extra : "");
    PQfreemem(n);
    return 1;
}

/* -------------------------------------------------------- statements */

static int pg_prepare(st_conn *c, const char *sql, st_stmt **out)
{
    *out = NULL;
    pg_stmt *s = calloc(1, sizeof *s);
    if (!s) return -2;
    s->base.drv = &store_driver_postgresql;
    s->c = c;
    int r = pg_sql_rewrite(sql, &s->sql, s->map, &s->nparams);
    if (r) {
        free(s);
        if (r == -1) {
            set_msg(c, "a parameter must be ?1..?32 (store_internal.h)");
            c->transient = 0;
        }
        return r;
    }
    *out = &s->base;
    return 0;
}

/* The slot of parameter ?i, or -1 when the SQL does not use it (the
 * value is then ignored, as the statement variant needs none). */
static int slot(pg_stmt *s, int i)
{
    return i >= 1 && i <= PG_MAX_PARAMS ? s->map[i] : -1;
}

static void put_be64(unsigned char *b, uint64_t v)
{
    for (int k = 7; k >= 0; k--, v >>= 8) b[k] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *b, int len)
{
    uint64_t v = 0;
    for (int k = 0; k < len; k++) v = v << 8 | b[k];
    return v;
}

static int bind_num(st_stmt *st, int i, uint64_t bits, Oid type)
{
    pg_stmt *s = PS(st);
    int k = slot(s, i);
    if (k < 0) return 0;
    put_be64(s->num[k], bits);
    s->types[k] = type;
    s->values[k] = (const char *)s->num[k];
    s->lengths[k] = 8;
    s->formats[k] = 1;
    return 0;
}

static int pg_bind_int64(st_stmt *st, int i, int64_t v)
{
    return bind_num(st, i, (uint64_t)v, OID_INT8);
}

static int pg_bind_double(st_stmt *st, int i, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bind_num(st, i, bits, OID_FLOAT8);
}

static int pg_bind_text(st_stmt *st, int i, const char *v)
{
    pg_stmt *s = PS(st);
    int k = slot(s, i);
    if (k < 0) return 0;
    s->types[k] = OID_TEXT;
    s->values[k] = v;
    s->lengths[k] = 0;
    s->formats[k] = 0;
    return 0;
}

static int pg_bind_blob(st_stmt *st, int i, const void *p, size_t n)
{
    pg_stmt *s = PS(st);
    int k = slot(s, i);
    if (k < 0) return 0;
    if (n > INT_MAX) {
        set_msg(s->c, "a value is larger than 2 GiB");
        s->c->transient = 0;
        return -1;
    }
    s->types[k] = OID_BYTEA;
    s->values[k] = n ? p : "";  /* a NULL pointer would send SQL NULL */
    s->lengths[k] = (int)n;
    s->formats[k] = 1;
    return 0;
}

static int pg_bind_null(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    int k = slot(s, i);
    if (k < 0) return 0;
    s->types[k] = 0;
    s->values[k] = NULL;
    s->lengths[k] = 0;
    s->formats[k] = 0;
    return 0;
}

static int pg_step(st_stmt *st)
{
    pg_stmt *s = PS(st);
    if (s->queued) return 0;
    if (!s->res) {
        s->res = pg_run(s->c, s->sql, s);
        if (!s->res) return -1;
    }
    if (PQresultStatus(s->res) != PGRES_TUPLES_OK) return 0;
    if (s->row >= PQntuples(s->res)) return 0;
    s->row++;
    return 1;
}

/* Queues a statement without rows (see DESIGN: its error comes at the
 * next wait). 0 or -1. */
static int pg_step_later(st_stmt *st)
{
    pg_stmt *s = PS(st);
    if (s->queued || s->res) return 0;
    if (ensure(s->c) || pipe_send(s->c, s->sql, s)) return -1;
    s->queued = 1;
    return 0;
}

/* The current row (the one the last step returned). */
static int cur(pg_stmt *s) { return s->row - 1; }

static int pg_col_type(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    if (!s->res || i < 0 || i >= PQnfields(s->res) ||
        PQgetisnull(s->res, cur(s), i))
        return ST_NULL;
    switch (PQftype(s->res, i)) {
    case OID_BOOL: case OID_INT2: case OID_INT4: case OID_INT8:
        return ST_INTEGER;
    case OID_FLOAT4: case OID_FLOAT8:
        return ST_REAL;
    case OID_BYTEA:
        return ST_BLOB;
    default:
        return ST_TEXT;
    }
}

static int64_t pg_col_int64(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    if (pg_col_type(st, i) == ST_NULL) return 0;
    const unsigned char *b =
        (const unsigned char *)PQgetvalue(s->res, cur(s), i);
    int len = PQgetlength(s->res, cur(s), i);
    switch (PQftype(s->res, i)) {
    case OID_INT8: return len == 8 ? (int64_t)get_be(b, 8) : 0;
    case OID_INT4: return len == 4 ? (int32_t)(uint32_t)get_be(b, 4) : 0;
    case OID_INT2: return len == 2 ? (int16_t)(uint16_t)get_be(b, 2) : 0;
    case OID_BOOL: return len == 1 ? b[0] != 0 : 0;
    default: {
        double d = st->drv->col_double(st, i);
        return (int64_t)d;
    }
    }
}

static double pg_col_double(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    if (pg_col_type(st, i) == ST_NULL) return 0.0;
    const unsigned char *b =
        (const unsigned char *)PQgetvalue(s->res, cur(s), i);
    int len = PQgetlength(s->res, cur(s), i);
    switch (PQftype(s->res, i)) {
    case OID_FLOAT8: {
        if (len != 8) return 0.0;
        uint64_t bits = get_be(b, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    case OID_FLOAT4: {
        if (len != 4) return 0.0;
        uint32_t bits = (uint32_t)get_be(b, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    case OID_INT8: case OID_INT4: case OID_INT2: case OID_BOOL:
        return (double)pg_col_int64(st, i);
    default:
        return 0.0;
    }
}

static const char *pg_col_text(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    if (pg_col_type(st, i) == ST_NULL) return NULL;
    return PQgetvalue(s->res, cur(s), i); /* NUL-terminated by libpq */
}

static const void *pg_col_blob(st_stmt *st, int i)
{
    return pg_col_text(st, i);
}

static int pg_col_bytes(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    if (pg_col_type(st, i) == ST_NULL) return 0;
    return PQgetlength(s->res, cur(s), i);
}

static const char *pg_col_name(st_stmt *st, int i)
{
    pg_stmt *s = PS(st);
    const char *n = s->res ? PQfname(s->res, i) : NULL;
    return n ? n : "?";
}

static void pg_finalize(st_stmt *st)
{
    if (!st) return;
    pg_stmt *s = PS(st);
    PQclear(s->res);
    free(s->sql);
    free(s);
}

const store_driver store_driver_postgresql = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .step_later = pg_step_later,
    .col_type = pg_col_type,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .col_bytes = pg_col_bytes,
    .col_name = pg_col_name,
    .finalize = pg_finalize,
    .changes = pg_changes,
    .begin = pg_begin,
    .commit = pg_commit,
    .in_tx = pg_in_tx,
    .rollback = pg_rollback,
    .errmsg = pg_errmsg,
    .transient = pg_transient,
    .maintain = pg_maintain,
    .listen = pg_listen,
    .wait_signal = pg_wait_signal,
    .shared = 1,
    .sql_has_migrations = "SELECT 1 FROM pg_catalog.pg_tables"
                          " WHERE schemaname = current_schema()"
                          " AND tablename = 'schema_migrations'",
    .sql_create_migrations = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             " version BIGINT PRIMARY KEY,"
                             " name TEXT NOT NULL,"
                             " applied_at BIGINT NOT NULL)",
    /* A transaction-level advisory lock, released at COMMIT or ROLLBACK,
     * keyed by (a constant naming the purpose, a hash of the schema and
     * the owner): the two-key space, apart from the migrations' one-key
     * lock. Not a row lock: the rows a limit counts (runs, datasets,
     * sweeps) cannot be locked against a new row's insert under READ
     * COMMITTED (the phantom is the very insert to stop), and FOR UPDATE
     * on the owner's users row would also queue every insert that names
     * the user (its foreign key check takes FOR KEY SHARE on that row)
     * and users rotate/revoke, not only the writers of a limit. A hash
     * collision between two owners only makes them wait for each other. */
    .sql_lock_owner = "SELECT 1 FROM (SELECT pg_advisory_xact_lock("
                      PG_OWNER_LOCK ", hashtext(current_schema() || '/' ||"
                      " CAST(?1 AS TEXT)))) AS l",
    .migrations = store_migrations_postgresql,
    .migrations_count = &store_migrations_postgresql_count,
};
