/* serve.c: `mnistd serve`: flags, start-up (store, recovery, datasets,
 * worker pool, HTTP daemon), and the graceful stop on SIGTERM/SIGINT. */
#include "server/cmd/serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/jobs/events.h"
#include "server/http/http.h"
#include "server/serving/mcache.h"
#include "server/telemetry/metrics.h"
#include "server/jobs/pool.h"
#include "server/http/routes.h"
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

static void usage(FILE *f)
{
    fprintf(f,
        "usage: mnistd serve [--host 127.0.0.1] [--port 8080] [--db mnistd.db]\n"
        "                    [--data-dir data]\n"
        "                    [--workers N] [--http-threads N]\n"
        "                    [--max-body BYTES] [--max-upload BYTES]\n"
        "                    [--max-queued N] [--max-batch N] [--timeout SECONDS]\n"
        "                    [--max-conns-per-ip N] [--token TOKEN]\n"
        "                    [--max-run-memory MiB] [--body-timeout SECONDS]\n"
        "  --token (or MNISTD_TOKEN): every route but /healthz and the\n"
        "  dashboard's files then needs Authorization: Bearer TOKEN.\n"
        "  --port 0 picks a free port; the chosen one is printed. --host 0.0.0.0\n"
        "  listens on every interface (the default is this machine only).\n");
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

static int parse_flags(int argc, char **argv, app_config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->port = 8080;
    cfg->host = "127.0.0.1";
    cfg->db_path = "mnistd.db";
    cfg->data_dir = "data";
    cfg->workers = cores > 0 ? (unsigned)cores : 2;
    /* one request thread per core: more only adds tail latency when the
     * cores are busy (bench/NOTES.md) */
    cfg->http_threads = cores > 2 ? (unsigned)cores : 2;
    cfg->max_body = 64u << 20;
    cfg->max_upload = 512u << 20;
    cfg->max_upload_rows = 1000000;
    cfg->max_queued = 100;
    cfg->max_run_memory = (size_t)2048 << 20;
    cfg->max_batch = 10000;
    cfg->timeout = 30;
    cfg->body_timeout = 300;
    cfg->per_ip_limit = 64;
    cfg->token = getenv("MNISTD_TOKEN");
    if (cfg->token && !*cfg->token) cfg->token = NULL;
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
        unsigned long long x;
        if (!strcmp(a, "--db")) cfg->db_path = v;
        else if (!strcmp(a, "--host")) cfg->host = v;
        else if (!strcmp(a, "--token")) cfg->token = *v ? v : NULL;
        else if (!strcmp(a, "--data-dir")) cfg->data_dir = v;
        else if (!strcmp(a, "--port")) {
            if (parse_u(a, v, 0, 65535, &x)) return -1;
            cfg->port = (unsigned)x;
        } else if (!strcmp(a, "--workers")) {
            if (parse_u(a, v, 1, 256, &x)) return -1;
            cfg->workers = (unsigned)x;
        } else if (!strcmp(a, "--http-threads")) {
            if (parse_u(a, v, 1, 256, &x)) return -1;
            cfg->http_threads = (unsigned)x;
        } else if (!strcmp(a, "--max-body")) {
            if (parse_u(a, v, 1024, 1ULL << 32, &x)) return -1;
            cfg->max_body = (size_t)x;
        } else if (!strcmp(a, "--max-upload")) {
            if (parse_u(a, v, 1024, 1ULL << 34, &x)) return -1;
            cfg->max_upload = (size_t)x;
        } else if (!strcmp(a, "--max-queued")) {
            if (parse_u(a, v, 1, 1000000, &x)) return -1;
            cfg->max_queued = (unsigned)x;
        } else if (!strcmp(a, "--max-run-memory")) {
            if (parse_u(a, v, 1, 1 << 20, &x)) return -1;
            cfg->max_run_memory = (size_t)x << 20;
        } else if (!strcmp(a, "--max-batch")) {
            if (parse_u(a, v, 1, 1000000, &x)) return -1;
            cfg->max_batch = (unsigned)x;
        } else if (!strcmp(a, "--max-conns-per-ip")) {
            if (parse_u(a, v, 1, 100000, &x)) return -1;
            cfg->per_ip_limit = (unsigned)x;
        } else if (!strcmp(a, "--body-timeout")) {
            if (parse_u(a, v, 1, 86400, &x)) return -1;
            cfg->body_timeout = (unsigned)x;
        } else if (!strcmp(a, "--timeout")) {
            if (parse_u(a, v, 1, 3600, &x)) return -1;
            cfg->timeout = (unsigned)x;
        } else {
            fprintf(stderr, "mnistd serve: unknown flag %s (see --help)\n", a);
            return -1;
        }
    }
    return 0;
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
    int rc = 1;
    app a;
    memset(&a, 0, sizeof a);
    int pf = parse_flags(argc, argv, &a.cfg);
    if (pf) return pf > 0 ? 0 : 2;
    pthread_mutex_init(&a.db_mu, NULL);
    atomic_init(&a.stopping, 0);
    atomic_init(&a.in_flight, 0);
    a.started_ms = app_now_ms();

    /* Block the stop signals in every thread; main waits for them.
     * Threads started earlier forward them to main. */
    serve_main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    mn_err err = {{0}};
    store *db = NULL;
    int recovered = 0;
    int busy = 0;
    store_lock *lock = serve_lock_db(a.cfg.db_path, &busy);
    if (!lock) {
        rc = busy ? 2 : 1;
        goto done;
    }
    if (store_open(&db, a.cfg.db_path, &err) ||
        store_recover(db, &recovered, &err)) {
        fprintf(stderr, "mnistd serve: %s: %s\n", a.cfg.db_path, err.msg);
        goto done;
    }
    if (recovered)
        fprintf(stderr, "mnistd: %d interrupted run(s) queued again to resume\n",
                recovered);
    a.datasets = dsreg_new(a.cfg.data_dir);
    a.models = mcache_new(16);
    a.metrics = metrics_new(http_n_routes);
    if (!a.datasets || !a.models || !a.metrics) {
        fprintf(stderr, "mnistd serve: out of memory\n");
        goto done;
    }
    int not_found;
    if (!dsreg_get(a.datasets, NULL, "mnist", &not_found, &err))
        fprintf(stderr, "mnistd: warning: %s\n", err.msg);
    a.events = ev_hub_new(15, events_poll, &a);
    if (!a.events) {
        fprintf(stderr, "mnistd serve: cannot start the event hub\n");
        goto done;
    }
    a.pool = pool_start(&a, a.cfg.workers, &err);
    if (!a.pool) {
        fprintf(stderr, "mnistd serve: %s\n", err.msg);
        goto done;
    }
    char herr[128];
    a.daemon = http_start(&a, a.cfg.port, a.cfg.http_threads, herr, sizeof herr);
    if (!a.daemon) {
        fprintf(stderr, "mnistd serve: %s\n", herr);
        goto done;
    }
    fprintf(stderr, "mnistd: listening on http://%s:%u (db %s, data %s, "
            "%u workers)\n", a.cfg.host, http_port(a.daemon), a.cfg.db_path,
            a.cfg.data_dir, a.cfg.workers);
    if (store_lock_note_port(lock, http_port(a.daemon), &err))
        fprintf(stderr, "mnistd: warning: %s\n", err.msg);
    printf("listening on port %u\n", http_port(a.daemon));
    fflush(stdout);

    /* wait for a stop signal; meanwhile checkpoint the database's log
     * four times a second, off the training and request threads (a few
     * quick runs write tens of MB of checkpoints a second; past 256 MiB
     * the committing thread would have to do it) */
    int sig = -1;
    while (sig < 0) {
        struct timespec quarter = {0, 250000000};
        sig = sigtimedwait(&sigs, NULL, &quarter);
        if (sig < 0 && store_wal_checkpoint(db, &err))
            fprintf(stderr, "mnistd: %s\n", err.msg);
    }
    fprintf(stderr, "mnistd: %s: stopping (in-flight requests finish, "
            "training checkpoints)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&a.stopping, 1);
    rc = 0;
done:
    if (a.daemon) {
        /* stop accepting: close the listening socket so that new
         * connections are refused at once instead of waiting in the
         * backlog until the process exits */
        MHD_socket lfd = MHD_quiesce_daemon(a.daemon);
        if (lfd != MHD_INVALID_SOCKET) close(lfd);
    }
    ev_hub_close(a.events, 2000);   /* end the SSE streams: none may stay suspended */
    /* let the requests already begun finish (new ones get 503), for at
     * most SERVE_DRAIN_MS; then stop the daemon before the pool, so that
     * no request runs while the pool is freed */
    for (int waited = 0; atomic_load(&a.in_flight) > 0 && waited < SERVE_DRAIN_MS;
         waited += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (a.daemon) MHD_stop_daemon(a.daemon);
    pool_stop(a.pool);
    ev_hub_free(a.events);
    mcache_free(a.models);
    metrics_free(a.metrics);
    dsreg_free(a.datasets);
    store_close(db);
    app_db_close_all(&a);
    store_lock_release(lock);   /* after the last connection closed */
    pthread_mutex_destroy(&a.db_mu);
    return rc;
}
