/* app.c: the store connection pool and small helpers of the app context. */
#include "server/app.h"

#include <stdlib.h>
#include <time.h>

#include "server/store/store.h"

struct store *app_db_acquire(app *a, mn_err *err)
{
    store *s = NULL;
    pthread_mutex_lock(&a->db_mu);
    if (a->db_n > 0) s = a->db_free[--a->db_n];
    pthread_mutex_unlock(&a->db_mu);
    if (s) return s;
    if (store_open(&s, a->cfg.db_path, err)) return NULL;
    return s;
}

void app_db_release(app *a, struct store *s)
{
    if (!s) return;
    pthread_mutex_lock(&a->db_mu);
    if (a->db_n == a->db_cap) {
        size_t cap = a->db_cap ? 2 * a->db_cap : 16;
        store **p = realloc(a->db_free, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&a->db_mu);
            store_close(s);
            return;
        }
        a->db_free = p;
        a->db_cap = cap;
    }
    a->db_free[a->db_n++] = s;
    pthread_mutex_unlock(&a->db_mu);
}

const char *app_node_name(app *a)
{
    return atomic_load(&a->node_named) ? a->node_name : "";
}

void app_db_close_all(app *a)
{
    pthread_mutex_lock(&a->db_mu);
    for (size_t i = 0; i < a->db_n; i++) store_close(a->db_free[i]);
    free(a->db_free);
    a->db_free = NULL;
    a->db_n = a->db_cap = 0;
    pthread_mutex_unlock(&a->db_mu);
}

int64_t app_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
