/* app.h: the server's context, handed to every request and worker: the
 * configuration and the shared modules. There is one app per process,
 * owned by cmd_serve; nothing here is a global.
 *
 * DESIGN (concurrency): config fields are written before the daemon and
 * the workers start and only read afterwards. Each module below locks for
 * itself. The store connection pool hands each thread its own SQLite
 * connection. */
#ifndef MN_APP_H
#define MN_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct store;
struct dsreg;
struct mcache;
struct mnames;
struct pool;
struct sweeper;
struct signals;
struct heartbeat;
struct ev_hub;
struct metrics;
struct auth_cache;
struct MHD_Daemon;

typedef struct app_config {
    unsigned port;
    const char *host;           /* IPv4 address to listen on */
    const char *db_path;
    const char *data_dir;
    unsigned workers;           /* training threads */
    unsigned http_threads;      /* request threads */
    size_t max_body;            /* JSON request bodies, bytes */
    size_t max_upload;          /* CSV uploads, bytes */
    uint32_t max_upload_rows;
    unsigned max_queued;        /* queued runs before 503 */
    /* fair use, once users exist (http/quota.h; 0 = no limit; admins
     * and the shared --token are exempt) */
    unsigned max_runs_per_user;   /* a user's queued + running runs */
    size_t max_upload_bytes_per_user; /* bytes of a user's datasets */
    unsigned max_sweep_trials_per_user; /* trials of running sweeps */
    size_t max_run_memory;      /* bytes one run may need (estimated) */
    unsigned max_batch;         /* images per predict request */
    unsigned timeout;           /* connection timeout, seconds */
    unsigned body_timeout;      /* whole request body, seconds */
    unsigned per_ip_limit;      /* open connections per client address */
    unsigned checkpoint_interval; /* least seconds between a run's paced
                                     checkpoints (0: every period) */
    const char *token;          /* bearer token required, or NULL */
    const char *tls_cert;       /* HTTPS: PEM certificate file, or NULL */
    const char *tls_key;        /* HTTPS: its PEM private key file, or NULL */
    const char *node_name;      /* --node-name, or NULL: <hostname>:<port> */
    unsigned lease_seconds;     /* a claimed run's lease (heartbeat.h) */
} app_config;

typedef struct app {
    app_config cfg;
    struct dsreg *datasets;
    struct mcache *models;
    struct mnames *names;       /* model name resolutions (mnames.h) */
    struct pool *pool;
    struct sweeper *sweeps;     /* the sweep scheduler (jobs/sweep.h) */
    struct heartbeat *heartbeat; /* the node's heartbeat (jobs/heartbeat.h) */
    /* this node's name (STORE_NODE_NAME_MAX + 1 bytes): written once
     * before the pool claims and the heartbeat starts (pool_set_node),
     * read-only afterwards; request threads, which may run before it is
     * written, read it through app_node_name */
    char node_name[128];
    atomic_int node_named;      /* 1 once node_name is written (release) */
    atomic_int store_ready;     /* 1 while the heartbeat reaches the
                                   database (GET /healthz's ready) */
    struct ev_hub *events;      /* live run events for SSE streams (events.h) */
    struct signals *signals;    /* the signals between nodes (signals.h) */
    struct metrics *metrics;
    struct auth_cache *auth;    /* users the store confirmed lately (auth.h) */
    struct MHD_Daemon *daemon;
    int shared_store;           /* store_is_shared: other nodes write the
                                   database too (set before the daemon
                                   starts) */
    atomic_int stopping;        /* set once shutdown begins */
    atomic_int in_flight;       /* requests begun and not yet completed */
    int64_t started_ms;
    /* store connection pool */
    pthread_mutex_t db_mu;
    struct store **db_free;     /* idle connections */
    size_t db_n, db_cap;
} app;

/* Takes an idle store connection or opens a new one. NULL with a reason. */
struct store *app_db_acquire(app *a, mn_err *err);

/* Returns a connection to the pool (NULL is ignored). */
void app_db_release(app *a, struct store *s);

/* Closes every idle connection. */
void app_db_close_all(app *a);

/* This node's name once it is known (app->node_name), "" before. */
const char *app_node_name(app *a);

/* Milliseconds since the epoch. */
int64_t app_now_ms(void);

#endif
