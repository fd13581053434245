/* test_mnames.c: the cache of model name resolutions
 * (server/serving/mnames.c): hits by version, alias and highest version
 * kept apart, a clear forgets everything, a resolution read before a
 * clear is not entered, names too long are not kept, and the table
 * replaces its oldest entries when full. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "server/serving/mnames.h"

Test(mnames, keys_are_kept_apart)
{
    mnames *c = mnames_new();
    cr_assert_not_null(c);
    int64_t run = 0, v = 0;
    uint64_t gen;
    mnames_key latest = {"digits", 0, NULL}, v1 = {"digits", 1, NULL},
               prod = {"digits", 0, "production"}, other = {"other", 0, NULL};
    cr_assert_eq(mnames_get(c, &latest, &run, &v, &gen), 0);
    mnames_put(c, &latest, gen, 12, 2);
    mnames_get(c, &v1, &run, &v, &gen);
    mnames_put(c, &v1, gen, 11, 1);
    mnames_get(c, &prod, &run, &v, &gen);
    mnames_put(c, &prod, gen, 11, 1);
    cr_assert(mnames_get(c, &latest, &run, &v, &gen) && run == 12 && v == 2);
    cr_assert(mnames_get(c, &v1, &run, &v, &gen) && run == 11 && v == 1);
    cr_assert(mnames_get(c, &prod, &run, &v, &gen) && run == 11 && v == 1);
    cr_assert_eq(mnames_get(c, &other, &run, &v, &gen), 0);
    mnames_key staging = {"digits", 0, "staging"};
    cr_assert_eq(mnames_get(c, &staging, &run, &v, &gen), 0);
    mnames_clear(c);
    cr_assert_eq(mnames_get(c, &latest, &run, &v, &gen), 0);
    mnames_free(c);
}

Test(mnames, a_read_older_than_a_clear_is_not_entered)
{
    mnames *c = mnames_new();
    int64_t run, v;
    uint64_t gen;
    mnames_key k = {"digits", 0, NULL};
    cr_assert_eq(mnames_get(c, &k, &run, &v, &gen), 0);
    mnames_clear(c); /* the registry changed while the store was read */
    mnames_put(c, &k, gen, 5, 1);
    cr_assert_eq(mnames_get(c, &k, &run, &v, &gen), 0);
    char long_name[100];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[99] = 0;
    mnames_key lk = {long_name, 0, NULL};
    mnames_put(c, &lk, gen, 5, 1);
    cr_assert_eq(mnames_get(c, &lk, &run, &v, &gen), 0);
    mnames_free(c);
}

Test(mnames, a_full_table_replaces_its_oldest)
{
    mnames *c = mnames_new();
    int64_t run, v;
    uint64_t gen;
    char names[MNAMES_SLOTS + 1][16];
    for (int i = 0; i <= MNAMES_SLOTS; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        mnames_key k = {names[i], 0, NULL};
        mnames_get(c, &k, &run, &v, &gen);
        mnames_put(c, &k, gen, i + 1, 1);
    }
    mnames_key first = {names[0], 0, NULL}, last = {names[MNAMES_SLOTS], 0, NULL};
    cr_assert_eq(mnames_get(c, &first, &run, &v, &gen), 0);
    cr_assert(mnames_get(c, &last, &run, &v, &gen) && run == MNAMES_SLOTS + 1);
    mnames_free(c);
}
