/* serve.c: `mnistd serve`: flags, start-up (store, recovery of dead
 * processes' runs, datasets, worker pool, HTTP daemon, the node's
 * registration and heartbeat), and the graceful stop on SIGTERM/SIGINT
 * (the node hands its runs back and leaves). */
#include "server/cmd/serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/jobs/events.h"
#include "server/http/http.h"
#include "server/http/auth.h"
#include "server/serving/mcache.h"
#include "server/serving/mnames.h"
#include "server/telemetry/metrics.h"
#include "server/jobs/heartbeat.h"
#include "server/jobs/pool.h"
#include "server/jobs/signals.h"
#include "server/jobs/sweep.h"
#include "server/http/routes.h"
#include "server/http/tls.h"
#include "server/store/store.h"

/* How long a graceful stop waits for in-flight requests (ms). */
#define SERVE_DRAIN_MS 5000

/* The thread that sigwaits for the stop signals (set once, before any
 * signal handler can run). */
static pthread_t serve_main_thread;

/* Runs only in a thread that does not block SIGTERM/SIGINT: one created
 * before cmd_serve blocked them (OpenBLAS starts its threads in a library
 * constructor). Without it the default action would kill the process
 * there: for a second signal during the graceful stop, or one during
 * start-up. Hands the signal to the main thread, where it stays blocked
 * until sigwait takes it (or stays pending once the stop has begun). */
static void forward_stop_signal(int sig)
{
    int saved = errno;
    pthread_kill(serve_main_thread, sig);
    errno = saved;
}

/* How a flag's value is kept in app_config. */
typedef enum {
    SF_STR,         /* const char *, borrowed from argv */
    SF_STR_OR_NULL, /* const char *, NULL when the value is empty */
    SF_UINT,        /* unsigned, an integer in [lo, hi] */
    SF_BYTES,       /* size_t, an integer in [lo, hi] */
    SF_MIB,         /* size_t in bytes, given as [lo, hi] MiB */
} serve_flag_kind;

/* One flag of `mnistd serve`: where its value goes, what it accepts, its
 * default, and how --help shows it. */
typedef struct serve_flag {
    const char *flag;
    serve_flag_kind kind;
    size_t field;               /* offsetof the field in app_config */
    unsigned long long lo, hi;  /* integers: the accepted range */
    const char *str_default;    /* strings: the default (NULL: none) */
    unsigned long long default_; /* integers: the default (0: computed by
                                    serve_defaults) */
    const char *metavar;        /* --help shows [flag metavar], or the
                                   default when NULL */
    int new_line;               /* --help starts a new line before it */
} serve_flag;

#define SF_FIELD(name) offsetof(app_config, name)

/* Every flag, in the order --help lists them. */
static const serve_flag serve_flags[] = {
    {"--host", SF_STR, SF_FIELD(host), 0, 0, "127.0.0.1", 0, NULL, 0},
    {"--port", SF_UINT, SF_FIELD(port), 0, 65535, NULL, 8080, NULL, 0},
    {"--db", SF_STR, SF_FIELD(db_path), 0, 0, "mnistd.db", 0, NULL, 0},
    {"--data-dir", SF_STR, SF_FIELD(data_dir), 0, 0, "data", 0, NULL, 1},
    {"--workers", SF_UINT, SF_FIELD(workers), 1, 256, NULL, 0, "N", 1},
    {"--http-threads", SF_UINT, SF_FIELD(http_threads), 1, 256, NULL, 0, "N",
     0},
    {"--max-body", SF_BYTES, SF_FIELD(max_body), 1024, 1ULL << 32, NULL,
     64ULL << 20, "BYTES", 1},
    {"--max-upload", SF_BYTES, SF_FIELD(max_upload), 1024, 1ULL << 34, NULL,
     512ULL << 20, "BYTES", 0},
    {"--max-queued", SF_UINT, SF_FIELD(max_queued), 1, 1000000, NULL, 100,
     "N", 1},
    {"--max-batch", SF_UINT, SF_FIELD(max_batch), 1, 1000000, NULL, 10000,
     "N", 0},
    {"--timeout", SF_UINT, SF_FIELD(timeout), 1, 3600, NULL, 30, "SECONDS",
     0},
    {"--max-runs-per-user", SF_UINT, SF_FIELD(max_runs_per_user), 0,
     1000000, NULL, 8, "N", 1},
    {"--max-upload-bytes-per-user", SF_BYTES,
     SF_FIELD(max_upload_bytes_per_user), 0, 1ULL << 40, NULL, 256ULL << 20,
     "BYTES", 0},
    {"--max-sweep-trials-per-user", SF_UINT,
     SF_FIELD(max_sweep_trials_per_user), 0, 1000000, NULL, 64, "N", 1},
    {"--max-conns-per-ip", SF_UINT, SF_FIELD(per_ip_limit), 1, 100000, NULL,
     64, "N", 1},
    {"--token", SF_STR_OR_NULL, SF_FIELD(token), 0, 0, NULL, 0, "TOKEN", 0},
    {"--max-run-memory", SF_MIB, SF_FIELD(max_run_memory), 1, 1 << 20, NULL,
     2048, "MiB", 1},
    {"--body-timeout", SF_UINT, SF_FIELD(body_timeout), 1, 86400, NULL, 300,
     "SECONDS", 0},
    {"--checkpoint-interval", SF_UINT, SF_FIELD(checkpoint_interval), 0,
     86400, NULL, 5, "SECONDS", 1},
    {"--tls-cert", SF_STR_OR_NULL, SF_FIELD(tls_cert), 0, 0, NULL, 0, "FILE",
     1},
    {"--tls-key", SF_STR_OR_NULL, SF_FIELD(tls_key), 0, 0, NULL, 0, "FILE",
     0},
    {"--node-name", SF_STR_OR_NULL, SF_FIELD(node_name), 0, 0, NULL, 0,
     "NAME", 1},
    {"--lease-seconds", SF_UINT, SF_FIELD(lease_seconds), 1, 3600, NULL, 10,
     NULL, 0},
};
#define N_SERVE_FLAGS (sizeof serve_flags / sizeof serve_flags[0])

/* Prints the usage: the flags from serve_flags, then the notes. */
static void usage(FILE *f)
{
    fprintf(f, "usage: mnistd serve");
    for (size_t i = 0; i < N_SERVE_FLAGS; i++) {
        const serve_flag *fl = &serve_flags[i];
        if (fl->new_line) fprintf(f, "\n%19s", "");
        if (fl->metavar)
            fprintf(f, " [%s %s]", fl->flag, fl->metavar);
        else if (fl->str_default)
            fprintf(f, " [%s %s]", fl->flag, fl->str_default);
        else
            fprintf(f, " [%s %llu]", fl->flag, fl->default_);
    }
    fprintf(f,
        "\n"
        "  --db (or MNISTD_DB): an SQLite file (created if missing), or a\n"
        "  PostgreSQL URI: postgresql://user:pass@host:5432/db or\n"
        "  postgresql:///db?host=/socket/dir; several servers may share one\n"
        "  PostgreSQL database, never one SQLite file.\n"
        "  --max-runs-per-user, --max-upload-bytes-per-user and\n"
        "  --max-sweep-trials-per-user (0 = no limit) apply once users exist\n"
        "  (mnistd users): a user's queued and running runs, the bytes of\n"
        "  the datasets they uploaded (as stored: a byte per pixel and per\n"
        "  label), and the trials of their sweeps that are running; over a\n"
        "  limit a request is answered 429. Admins and --token are exempt.\n"
        "  --token (or MNISTD_TOKEN): every route but /healthz and the\n"
        "  dashboard's files then needs Authorization: Bearer TOKEN (an\n"
        "  admin's); so do they once `mnistd users add NAME` made a user.\n"
        "  --port 0 picks a free port; the chosen one is printed. --host 0.0.0.0\n"
        "  listens on every interface (the default is this machine only).\n"
        "  --checkpoint-interval (default 5): a run stores its full checkpoint\n"
        "  at a period end only once this many seconds have passed since the\n"
        "  last one (and always at its last period and when it stops); 0\n"
        "  stores one at every period end. A crash loses at most that much.\n"
        "  --tls-cert and --tls-key (or MNISTD_TLS_CERT, MNISTD_TLS_KEY), both\n"
        "  or neither: serve HTTPS with this PEM certificate (chain) and its\n"
        "  unencrypted PEM private key, checked at start.\n"
        "  --node-name (default <hostname>:<port>): this node's name in the\n"
        "  store (GET /nodes, a run's node), 1..127 bytes. --lease-seconds\n"
        "  (default 10): a run this node trains is requeued by any node once\n"
        "  its heartbeat (every second) has not renewed it for this long.\n");
}

/* Parses an unsigned flag value in [lo, hi]. */
static int parse_u(const char *flag, const char *v, unsigned long long lo,
                   unsigned long long hi, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || !*v || *end || *v == '-' || x < lo || x > hi) {
        fprintf(stderr, "mnistd serve: %s must be an integer in %llu..%llu\n",
                flag, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Stores a flag's value in its field: the string str for string flags,
 * the integer x for the others. */
static void flag_store(app_config *cfg, const serve_flag *fl, const char *str,
                       unsigned long long x)
{
    char *field = (char *)cfg + fl->field;
    switch (fl->kind) {
    case SF_STR:
        *(const char **)field = str;
        break;
    case SF_STR_OR_NULL:
        *(const char **)field = str && *str ? str : NULL;
        break;
    case SF_UINT:
        *(unsigned *)field = (unsigned)x;
        break;
    case SF_BYTES:
        *(size_t *)field = (size_t)x;
        break;
    case SF_MIB:
        *(size_t *)field = (size_t)x << 20;
        break;
    }
}

/* Fills *cfg with the defaults: the table's, then those computed from
 * the machine and the environment. */
static void serve_defaults(app_config *cfg)
{
    for (size_t i = 0; i < N_SERVE_FLAGS; i++) {
        const serve_flag *fl = &serve_flags[i];
        if (fl->str_default || fl->default_)
            flag_store(cfg, fl, fl->str_default, fl->default_);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cores > 0 ? (unsigned)cores : 2;
    /* one request thread per core: more only adds tail latency when the
     * cores are busy (bench/NOTES.md) */
    cfg->http_threads = cores > 2 ? (unsigned)cores : 2;
    cfg->max_upload_rows = 1000000;
    /* the flags' environment forms: an empty value is none */
    static const struct {
        const char *name;
        size_t field;
    } env[] = {
        {"MNISTD_TOKEN", SF_FIELD(token)},
        {"MNISTD_TLS_CERT", SF_FIELD(tls_cert)},
        {"MNISTD_TLS_KEY", SF_FIELD(tls_key)},
    };
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        const char *v = getenv(env[i].name);
        *(const char **)((char *)cfg + env[i].field) = v && *v ? v : NULL;
    }
    /* MNISTD_DB: a path or a PostgreSQL URI; --db, when given, wins */
    const char *db = getenv("MNISTD_DB");
    if (db && *db) cfg->db_path = db;
}

/* Fills *cfg from the defaults and the flags (argv[0] is "serve"). 0, 1
 * after --help (printed), -1 on a bad flag (the reason printed). */
static int parse_flags(int argc, char **argv, app_config *cfg)
{
    serve_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mnistd serve: %s needs a value (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        const serve_flag *fl = NULL;
        for (size_t k = 0; k < N_SERVE_FLAGS && !fl; k++)
            if (!strcmp(a, serve_flags[k].flag)) fl = &serve_flags[k];
        if (!fl) {
            fprintf(stderr, "mnistd serve: unknown flag %s (see --help)\n", a);
            return -1;
        }
        unsigned long long x = 0;
        if (fl->kind != SF_STR && fl->kind != SF_STR_OR_NULL &&
            parse_u(a, v, fl->lo, fl->hi, &x))
            return -1;
        flag_store(cfg, fl, v, x);
    }
    if (cfg->node_name && strlen(cfg->node_name) > STORE_NODE_NAME_MAX) {
        fprintf(stderr, "mnistd serve: --node-name must be 1..%d bytes\n",
                STORE_NODE_NAME_MAX);
        return -1;
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        fprintf(stderr, "mnistd serve: %s is missing: HTTPS needs both "
                "--tls-cert and --tls-key (or MNISTD_TLS_CERT and "
                "MNISTD_TLS_KEY)\n", cfg->tls_cert ? "--tls-key" : "--tls-cert");
        return -1;
    }
    return 0;
}

/* Blocks SIGTERM and SIGINT in this thread and the threads it starts, so
 * that serve_wait takes them; threads started earlier forward them here
 * (forward_stop_signal). Ignores SIGPIPE. *sigs receives the stop set. */
static void serve_block_signals(sigset_t *sigs)
{
    serve_main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Opens the store at cfg->db_path and queues again the runs that a dead
 * process left running. On SQLite, whose one-server lock proves every
 * earlier process dead, that is every running run, handed back as a
 * graceful stop hands them back (store_node_leave(NULL): no crash
 * counted, as before nodes existed). On PostgreSQL, where other nodes
 * train side by side, the runs of this node's own name (node, when it is
 * known before the port is: NULL otherwise) have their leases expired,
 * and those and every run whose lease has expired are reaped (a crash
 * counted on each: store_lease_reap). 0 with *db open (the caller closes
 * it), or -1 with *db NULL and the reason printed on one line (a
 * PostgreSQL URI is not printed: err names the database and host, never
 * the password). */
static int serve_open_store(const app_config *cfg, const char *node,
                            store **db)
{
    mn_err err = {{0}};
    int recovered = 0;
    int64_t running = 0;
    int pg = store_target_is_postgresql(cfg->db_path);
    int bad = store_open(db, cfg->db_path, &err);
    if (!bad && !pg)
        bad = store_run_count(*db, "running", &running, &err) ||
              store_node_leave(*db, NULL, &err);
    if (!bad && pg)
        bad = (node && store_lease_expire(*db, node, NULL, &err)) ||
              store_lease_reap(*db, HEARTBEAT_MAX_CRASHES, &recovered, &err);
    if (bad) {
        if (pg)
            fprintf(stderr, "mnistd serve: %s\n", err.msg);
        else
            fprintf(stderr, "mnistd serve: %s: %s\n", cfg->db_path, err.msg);
        store_close(*db);
        *db = NULL;
        return -1;
    }
    if (!pg) recovered = (int)running;
    if (recovered)
        fprintf(stderr, "mnistd: %d interrupted run(s) queued again to resume\n",
                recovered);
    return 0;
}

/* This node's name into a->node_name: --node-name, else
 * "<hostname>:<port>" (port: the flag's, or when it is 0 the one the
 * daemon got, 0 before it started: then the name stays empty). */
static void serve_node_name(app *a, unsigned port)
{
    if (a->cfg.node_name) {
        snprintf(a->node_name, sizeof a->node_name, "%s", a->cfg.node_name);
        return;
    }
    if (!port) return;
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    snprintf(a->node_name, sizeof a->node_name, "%s:%u", host, port);
}

/* Registers the node (its name now known), lets the pool claim, and starts
 * the heartbeat. 0, or -1 with the reason printed. */
static int serve_join(app *a, store *db)
{
    mn_err err = {{0}};
    if (store_node_register(db, a->node_name, (int)a->cfg.workers, &err)) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    atomic_store(&a->store_ready, 1);
    atomic_store(&a->node_named, 1);    /* publishes node_name */
    pool_set_node(a->pool);
    a->heartbeat = heartbeat_start(a, &err);
    if (!a->heartbeat) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Starts the modules in order: dataset registry (loading mnist ahead),
 * model cache, metrics, event hub, worker pool (claiming once the node
 * has its name), signals (signals.h), sweep scheduler, HTTP daemon (HTTPS
 * with tls, borrowed until serve_stop; NULL: plain HTTP), the node's
 * registration and heartbeat (serve_join, over db); then prints where it
 * listens. 0, or -1 with the reason printed; what started is in *a either
 * way, for serve_stop. */
static int serve_start(app *a, store *db, const tls_pem *tls)
{
    mn_err err = {{0}};
    a->shared_store = store_is_shared(db);
    a->datasets = dsreg_new(a->cfg.data_dir);
    a->models = mcache_new(16);
    a->names = mnames_new();
    a->metrics = metrics_new(http_n_routes);
    a->auth = auth_cache_new();
    if (!a->datasets || !a->models || !a->names || !a->metrics || !a->auth) {
        fprintf(stderr, "mnistd serve: out of memory\n");
        return -1;
    }
    int not_found;
    const ds_dataset *mnist = dsreg_get(a->datasets, NULL, "mnist",
                                        &not_found, &err);
    if (!mnist) fprintf(stderr, "mnistd: warning: %s\n", err.msg);
    dsreg_put(a->datasets, mnist);      /* stays loaded: built-in */
    a->events = ev_hub_new(15, events_poll, a);
    if (!a->events) {
        fprintf(stderr, "mnistd serve: cannot start the event hub\n");
        return -1;
    }
    a->pool = pool_start(a, a->cfg.workers, &err);
    if (!a->pool) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    /* after the pool and the hub, which it wakes */
    a->signals = signals_start(a, &err);
    if (!a->signals) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    /* after the pool: its first pass resumes the sweeps left running */
    a->sweeps = sweeper_start(a, &err);
    if (!a->sweeps) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    a->daemon = http_start(a, a->cfg.port, a->cfg.http_threads, tls, &err);
    if (!a->daemon) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        return -1;
    }
    if (!a->node_name[0]) serve_node_name(a, http_port(a->daemon));
    if (serve_join(a, db)) return -1;
    fprintf(stderr, "mnistd: listening on %s://%s:%u (db %s, data %s, "
            "%u workers, node %s)\n", tls ? "https" : "http", a->cfg.host,
            http_port(a->daemon),
            store_target_is_postgresql(a->cfg.db_path) ? "postgresql"
                                                        : a->cfg.db_path,
            a->cfg.data_dir, a->cfg.workers, a->node_name);
    printf("listening on port %u\n", http_port(a->daemon));
    fflush(stdout);
    return 0;
}

/* Waits for a signal of sigs and returns it; meanwhile checkpoints the
 * database's log four times a second, off the training and request
 * threads (a few quick runs write tens of MB of checkpoints a second;
 * past 256 MiB the committing thread would have to do it). */
static int serve_wait(store *db, const sigset_t *sigs)
{
    mn_err err = {{0}};
    int sig = -1;
    while (sig < 0) {
        struct timespec quarter = {0, 250000000};
        sig = sigtimedwait(sigs, NULL, &quarter);
        if (sig < 0 && store_wal_checkpoint(db, &err))
            fprintf(stderr, "mnistd: %s\n", err.msg);
    }
    return sig;
}

/* The graceful stop, of whatever serve_start started: refuses new
 * connections, ends the event streams, lets the requests already begun
 * finish (for at most SERVE_DRAIN_MS), stops the daemon before the pool
 * (so that no request runs while the pool is freed), then frees the rest
 * and closes db (NULL is ignored). */
static void serve_stop(app *a, store *db)
{
    MHD_socket lfd = MHD_INVALID_SOCKET;
    if (a->daemon) {
        /* stop accepting: shut the listening socket down so that new
         * connections are refused at once instead of waiting in the
         * backlog until the process exits. It is closed only after
         * MHD_stop_daemon: MHD's threads take it out of their epoll sets
         * after quiesce returns (closing it here raced with them, and its
         * number could be reused meanwhile) */
        lfd = MHD_quiesce_daemon(a->daemon);
        if (lfd != MHD_INVALID_SOCKET) shutdown(lfd, SHUT_RDWR);
    }
    ev_hub_close(a->events, 2000);  /* end the SSE streams: none may stay suspended */
    for (int waited = 0;
         atomic_load(&a->in_flight) > 0 && waited < SERVE_DRAIN_MS;
         waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (a->daemon) MHD_stop_daemon(a->daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    /* the scheduler's thread first (it notifies the pool), the pool (its
     * workers notify the scheduler as their trials stop), then the
     * scheduler's memory */
    signals_stop(a->signals);   /* it wakes the pool and the hub */
    sweeper_stop(a->sweeps);
    /* the workers checkpoint and requeue their runs while the heartbeat
     * (which reads the pool) still renews their leases; then the heartbeat
     * stops and the node leaves: whatever it still holds goes back to the
     * queue at once, and its row goes (no node waits for the lease) */
    pool_drain(a->pool);
    int joined = a->heartbeat != NULL;
    heartbeat_stop(a->heartbeat);
    a->heartbeat = NULL;
    if (joined && db) {
        mn_err err = {{0}};
        if (store_node_leave(db, a->node_name, &err))
            fprintf(stderr, "mnistd: %s\n", err.msg);
    }
    pool_stop(a->pool);
    sweeper_free(a->sweeps);
    ev_hub_free(a->events);
    mcache_free(a->models);
    mnames_free(a->names);
    metrics_free(a->metrics);
    auth_cache_free(a->auth);
    dsreg_free(a->datasets);
    store_close(db);
    app_db_close_all(a);
}

/* Takes the store's one-server lock on cfg's database; NULL after
 * printing why (another server holds it, or the lock file cannot be
 * used). *busy is set when another server holds it (exit code 2). */
static store_lock *serve_lock_db(const char *db_path, int *busy)
{
    store_lock *l = NULL;
    long pid = 0;
    unsigned port = 0;
    mn_err err = {{0}};
    int r = store_lock_take(db_path, &l, &pid, &port, &err);
    *busy = r == STORE_CONFLICT;
    if (r == STORE_CONFLICT) {
        char port_note[32] = "";
        if (port) snprintf(port_note, sizeof port_note, ", port %u", port);
        fprintf(stderr, "mnistd serve: %s is in use by process %ld (mnistd "
                "serve%s); one server per SQLite database\n", db_path, pid,
                port_note);
    } else if (r) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
    }
    return l;
}

int cmd_serve(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int pf = parse_flags(argc, argv, &a.cfg);
    if (pf) return pf > 0 ? 0 : 2;
    /* HTTPS: a bad certificate or key is a usage error, found before the
     * store is touched */
    tls_pem tls = {NULL, NULL};
    if (a.cfg.tls_cert) {
        mn_err err = {{0}};
        if (tls_pem_load(&tls, a.cfg.tls_cert, a.cfg.tls_key, &err)) {
            fprintf(stderr, "mnistd serve: %s\n", err.msg);
            return 2;
        }
    }
    pthread_mutex_init(&a.db_mu, NULL);
    atomic_init(&a.stopping, 0);
    atomic_init(&a.in_flight, 0);
    atomic_init(&a.node_named, 0);
    atomic_init(&a.store_ready, 0);
    a.started_ms = app_now_ms();

    sigset_t sigs;
    serve_block_signals(&sigs);
    int rc = 1, busy = 0;
    store *db = NULL;
    /* before the store is opened: a second server must not recover (requeue)
     * the runs the first one trains. SQLite only: the servers that share a
     * PostgreSQL database are meant to run side by side. */
    int pg = store_target_is_postgresql(a.cfg.db_path);
    serve_node_name(&a, a.cfg.port);    /* empty until the port is known */
    store_lock *lock = pg ? NULL : serve_lock_db(a.cfg.db_path, &busy);
    if (!pg && !lock) {
        rc = busy ? 2 : 1;
    } else if (serve_open_store(&a.cfg, a.node_name[0] ? a.node_name : NULL,
                                &db)) {
        /* PostgreSQL: a bad URI, an unreachable server, a wrong password or
         * a missing database are start-up errors like a busy SQLite file */
        rc = pg ? 2 : 1;
    } else if (serve_start(&a, db, a.cfg.tls_cert ? &tls : NULL) == 0) {
        mn_err err = {{0}};
        if (lock && store_lock_note_port(lock, http_port(a.daemon), &err))
            fprintf(stderr, "mnistd: warning: %s\n", err.msg);
        int sig = serve_wait(db, &sigs);
        fprintf(stderr, "mnistd: %s: stopping (in-flight requests finish, "
                "training checkpoints)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        atomic_store(&a.stopping, 1);
        rc = 0;
    }
    serve_stop(&a, db);
    store_lock_release(lock);   /* after the last connection closed */
    tls_pem_free(&tls);         /* after the daemon stopped */
    pthread_mutex_destroy(&a.db_mu);
    return rc;
}
