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
 *   that leaves a parameter out still sends a dense list); the first step sends it with
 *   PQexecParams and its bound values, asking for binary results. Integers
 *   travel as int8, reals as float8 (bit for bit: no decimal rounding, so
 *   that metrics read back are the numbers written), BLOBs as bytea, text
 *   as text; a NULL parameter is left untyped for the server to infer.
 * - Transactions: ST_TX_WRITE is a plain BEGIN (READ COMMITTED); the store
 *   locks the rows it reads before changing them (SELECT ... FOR UPDATE),
 *   and a claim skips the rows other claimers hold (FOR UPDATE SKIP
 *   LOCKED), so that two workers, in one process or in two, never take the
 *   same run. ST_TX_READ is REPEATABLE READ READ ONLY (one snapshot).
 *   ST_TX_MIGRATE also takes a transaction-level advisory lock
 *   (pg_advisory_xact_lock), held until COMMIT: several processes starting
 *   at once on an empty database migrate once and all start.
 * - Session: lock_timeout 10 s (SQLite's busy_timeout), notices silenced,
 *   connect_timeout 5 s unless the URI says otherwise.
 * - A dropped connection (the server restarted) is re-opened on the next
 *   use: before a statement, and once more when a statement outside a
 *   transaction fails because the connection broke (nothing of it was
 *   committed; the retry is the whole statement). Inside a transaction the
 *   statement fails: the caller sees STORE_UNAVAILABLE and tries again.
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
#define PG_CONNECT_TIMEOUT "5"    /* seconds, unless the URI sets one */
/* the advisory lock key of migrations ("mnistd" in ASCII) */
#define PG_MIGRATE_LOCK "120282592404580"

/* type OIDs (pg_type.dat; stable across releases) */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20,
    OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_FLOAT4 = 700,
    OID_FLOAT8 = 701, OID_UNKNOWN = 705, OID_VARCHAR = 1043,
};

struct st_conn {
    PGconn *pg;         /* owned */
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
    return ok ? 0 : -1;
}

/* Re-opens a connection that broke (see DESIGN). 0 or -1. */
static int reconnect(st_conn *c)
{
    PQreset(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_error(c, NULL);
        c->transient = 1;
        return -1;
    }
    return session_setup(c);
}

/* Before a statement: a broken connection is re-opened. */
static int ensure(st_conn *c)
{
    return PQstatus(c->pg) == CONNECTION_OK ? 0 : reconnect(c);
}

static int result_ok(const PGresult *r)
{
    ExecStatusType t = PQresultStatus(r);
    return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* Sends sql (with the parameters when s is non-NULL, else as text of any
 * number of statements) and returns its result (owned; NULL on failure,
 * with the error recorded). Retries once on a fresh connection when the
 * connection broke outside a transaction. */
static PGresult *pg_send(st_conn *c, const char *sql, pg_stmt *s)
{
    if (ensure(c)) return NULL;
    for (int attempt = 0;; attempt++) {
        int idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
        PGresult *r = s ? PQexecParams(c->pg, sql, s->nparams, s->types,
                                       s->values, s->lengths, s->formats, 1)
                        : PQexec(c->pg, sql);
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

static int pg_begin(st_conn *c, int kind)
{
    return pg_exec(c,
                   kind == ST_TX_READ
                       ? "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                   : kind == ST_TX_MIGRATE
                       ? "BEGIN; SELECT pg_advisory_xact_lock("
                         PG_MIGRATE_LOCK ")"
                       : "BEGIN");
}

static int pg_rollback(st_conn *c) { return pg_exec(c, "ROLLBACK"); }

static int pg_in_tx(st_conn *c)
{
    if (!c || !c->pg) return 0;
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
    if (!s->res) {
        s->res = pg_send(s->c, s->sql, s);
        if (!s->res) return -1;
    }
    if (PQresultStatus(s->res) != PGRES_TUPLES_OK) return 0;
    if (s->row >= PQntuples(s->res)) return 0;
    s->row++;
    return 1;
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
    .migrations = store_migrations_postgresql,
    .migrations_count = &store_migrations_postgresql_count,
};
