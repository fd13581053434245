/* pg_sql.h: the PostgreSQL driver's rewrite of the store's common SQL
 * dialect (store_internal.h) into PostgreSQL's: ?N parameters become $k,
 * numbered densely in the order of their first appearance, so that a
 * statement variant that leaves a parameter out (a list without its
 * status filter) still sends PostgreSQL a dense list. Text between single
 * or double quotes is copied as it is. No libpq here (fuzzed alone:
 * tests/fuzz/fuzz_pgsql.c). */
#ifndef MN_PG_SQL_H
#define MN_PG_SQL_H

#define PG_SQL_MAX_PARAMS 32  /* ?1..?32 */

/* Rewrites sql (NUL-terminated, borrowed) into *out (a new string, the
 * caller frees it). map[N] (N = 1..PG_SQL_MAX_PARAMS) receives the slot
 * k - 1 of ?N's $k, or -1 when sql does not use ?N (map[0] is -1);
 * *nparams the number of distinct parameters. 0; -1 for a ? that is not
 * followed by 1..PG_SQL_MAX_PARAMS (*out NULL); -2 out of memory. */
int pg_sql_rewrite(const char *sql, char **out,
                   int map[PG_SQL_MAX_PARAMS + 1], int *nparams);

#endif
