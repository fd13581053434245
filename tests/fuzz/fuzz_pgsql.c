/* fuzz_pgsql.c: the PostgreSQL driver's rewrite of ?N parameters into $k
 * (pg_sql_rewrite, server/store/pg_sql.h).
 *
 * Input: SQL text (a NUL ends it early).
 *
 * Promises checked: an accepted text comes back with every quoted part as
 * it was and every ?N outside quotes replaced; the parameters' slots are
 * dense (0..nparams-1, each used once in map) and, when the input had
 * no '$', every $k in the output outside quotes has 1 <= k <= nparams; a rejected text leaves no output,
 * no parameter and an all -1 map. */
#include "server/store/pg_sql.h"
#include "tests/fuzz/fuzz.h"

static int fuzz_pgsql(const uint8_t *data, size_t size)
{
    char *sql = malloc(size + 1);
    if (!sql) return 0;
    memcpy(sql, data, size);
    sql[size] = '\0';
    char *out = NULL;
    int map[PG_SQL_MAX_PARAMS + 1], n = -1;
    int r = pg_sql_rewrite(sql, &out, map, &n);
    FUZZ_CHECK(r == 0 || r == -1);
    FUZZ_CHECK(map[0] == -1);
    if (r == 0) {
        FUZZ_CHECK(out != NULL && n >= 0 && n <= PG_SQL_MAX_PARAMS);
        int seen[PG_SQL_MAX_PARAMS] = {0};
        for (int v = 1; v <= PG_SQL_MAX_PARAMS; v++) {
            if (map[v] < 0) continue;
            FUZZ_CHECK(map[v] < n && !seen[map[v]]);
            seen[map[v]] = 1;
        }
        for (int k = 0; k < n; k++) FUZZ_CHECK(seen[k]);
        /* outside quotes: no '?' left, and each $k within 1..n */
        char q = 0;
        for (const char *p = out; *p; p++) {
            if (q) {
                if (*p == q) q = 0;
                continue;
            }
            if (*p == '\'' || *p == '"') {
                q = *p;
                continue;
            }
            FUZZ_CHECK(*p != '?');
            if (*p == '$' && !strchr(sql, '$')) { /* one of ours */
                int k = 0;
                while (p[1] >= '0' && p[1] <= '9') k = k * 10 + (*++p - '0');
                FUZZ_CHECK(k >= 1 && k <= n);
            }
        }
        free(out);
    } else {
        FUZZ_CHECK(out == NULL && n == 0);
        for (int v = 0; v <= PG_SQL_MAX_PARAMS; v++) FUZZ_CHECK(map[v] == -1);
    }
    free(sql);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_pgsql(data, size);
}
#endif
