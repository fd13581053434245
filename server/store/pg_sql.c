/* pg_sql.c: ?N parameters to PostgreSQL's $k (pg_sql.h). */
#include "server/store/pg_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_sql_rewrite(const char *sql, char **out,
                   int map[PG_SQL_MAX_PARAMS + 1], int *nparams)
{
    size_t n = strlen(sql);
    *out = NULL;
    *nparams = 0;
    for (int i = 0; i <= PG_SQL_MAX_PARAMS; i++) map[i] = -1;
    /* a "?N" takes 2..3 bytes and its "$k" 2..3: at most one byte more
     * for every two of the input */
    size_t cap = n + n / 2 + 4;
    char *o = malloc(cap);
    if (!o) return -2;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        char ch = sql[i];
        if (ch == '\'' || ch == '"') { /* copied to the closing quote */
            o[j++] = sql[i++];
            while (i < n && sql[i] != ch) o[j++] = sql[i++];
            if (i < n) o[j++] = sql[i++];
            continue;
        }
        if (ch != '?') {
            o[j++] = sql[i++];
            continue;
        }
        i++;
        int v = 0, d = 0;
        while (i < n && sql[i] >= '0' && sql[i] <= '9' && d < 3) {
            v = v * 10 + (sql[i++] - '0');
            d++;
        }
        if (!d || v < 1 || v > PG_SQL_MAX_PARAMS ||
            (i < n && sql[i] >= '0' && sql[i] <= '9')) {
            free(o);
            *nparams = 0;
            for (int k = 0; k <= PG_SQL_MAX_PARAMS; k++) map[k] = -1;
            return -1;
        }
        if (map[v] < 0) map[v] = (*nparams)++;
        j += (size_t)snprintf(o + j, cap - j, "$%d", map[v] + 1);
    }
    o[j] = '\0';
    *out = o;
    return 0;
}
