/* test_predict.c: the predict body's fast decoder against the jansson one,
 * and the probability formatter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "engine/rng.h"
#include "server/render/enc.h"
#include "server/http/predict_decode.h"

/* A body with n images whose values come from fmt applied to v(i). */
static char *make_body(const char *run, int n, const char *fmt, rng_state *r,
                       int spaces)
{
    size_t cap = 64 + (size_t)n * DS_PIXELS * 32;
    char *b = malloc(cap), *o = b;
    cr_assert(b);
    o += sprintf(o, spaces ? "{ " : "{");
    if (run) o += sprintf(o, "\"run\"%s:%s\"%s\",", spaces ? " " : "",
                          spaces ? " " : "", run);
    o += sprintf(o, "\"pixels\":%s", n > 1 ? "[" : "");
    for (int i = 0; i < n; i++) {
        o += sprintf(o, "%s[", i ? (spaces ? ",\n " : ",") : "");
        for (int j = 0; j < DS_PIXELS; j++) {
            float v = rng_uniform(r) < 0.6f ? 0.0f : rng_uniform(r);
            if (j % 97 == 0) v = 1.0f;
            if (j) o += sprintf(o, "%s", spaces ? ", " : ",");
            o += sprintf(o, fmt, (double)v);
        }
        o += sprintf(o, "]");
    }
    o += sprintf(o, "%s}%s", n > 1 ? "]" : "", spaces ? " \n" : "");
    return b;
}

/* Decodes body both ways and checks they agree exactly. */
static void check_same(const char *body, size_t want_n, const char *want_run)
{
    float *x1 = NULL, *x2 = NULL;
    size_t n1 = 0, n2 = 0;
    char run[32];
    const char *run2 = NULL;
    char msg[200];
    cr_assert_eq(predict_decode_fast(body, strlen(body), 100, &x1, &n1, run),
                 PREDICT_OK, "fast path refused: %.80s", body);
    json_error_t je;
    json_t *j = json_loads(body, JSON_REJECT_DUPLICATES, &je);
    cr_assert(j, "jansson: %s", je.text);
    cr_assert_eq(predict_decode(j, 100, &x2, &n2, &run2, msg, sizeof msg),
                 PREDICT_OK, "%s", msg);
    cr_assert_eq(n1, want_n);
    cr_assert_eq(n2, want_n);
    cr_assert_str_eq(run, want_run ? want_run : "");
    for (size_t i = 0; i < n1 * DS_PIXELS; i++)
        cr_assert(x1[i] == x2[i], "pixel %zu: fast %.9g, jansson %.9g", i,
                  x1[i], x2[i]);
    json_decref(j);
    free(x1);
    free(x2);
}

Test(predict, fast_decoder_matches_jansson_exactly)
{
    rng_state r;
    rng_seed(&r, 5);
    const char *fmts[] = {"%.4f", "%.9g", "%.17g", "%.1f", "%.0f",  "%.6e",
                          "%.25f", "%g",  "%.15f", "%.16f", "%.14f"};
    for (int f = 0; f < 11; f++)
        for (int n = 1; n <= 3; n++) {
            char *b = make_body(f % 2 ? "12" : NULL, n, fmts[f], &r, f == 2);
            check_same(b, (size_t)n, f % 2 ? "12" : NULL);
            free(b);
        }
}

Test(predict, fast_decoder_leaves_other_shapes_to_jansson)
{
    rng_state r;
    rng_seed(&r, 6);
    char *good = make_body("3", 1, "%.3f", &r, 0);
    const char *bad_numbers[] = {"-0.5", "1.5", "2", "01", ".5", "0.", "1e",
                                 "+1", "\"0.5\"", "null", "1e5", "0x1",
                                 "1.0000001", "0.5.5",
                                 "-0", "10"};
    for (size_t k = 0; k < sizeof bad_numbers / sizeof *bad_numbers; k++) {
        /* replace the first pixel (a "1.000" at index 0) */
        char *b = malloc(strlen(good) + 64);
        const char *first = strstr(good, "[") + 1;
        size_t head = (size_t)(first - good);
        const char *rest = strchr(first, ',');
        sprintf(b, "%.*s%s%s", (int)head, good, bad_numbers[k], rest);
        float *x = NULL;
        size_t n = 0;
        char run[32];
        cr_assert_eq(predict_decode_fast(b, strlen(b), 100, &x, &n, run),
                     PREDICT_FALLBACK, "took %s", bad_numbers[k]);
        cr_assert_null(x);
        free(b);
    }
    const char *bodies[] = {
        "", "[]", "{}", "{\"pixels\": []}", "{\"pixels\": [[]]}",
        "{\"run\": \"1\", \"run\": \"2\", \"pixels\": [0]}",
        "{\"colour\": 1, \"pixels\": [0]}", "{\"run\": 7, \"pixels\": [0]}",
        "{\"run\": \"a\\u0031\", \"pixels\": [0]}", "{\"pixels\": [0, 1]}",
    };
    for (size_t k = 0; k < sizeof bodies / sizeof *bodies; k++) {
        float *x = NULL;
        size_t n = 0;
        char run[32];
        cr_assert_eq(predict_decode_fast(bodies[k], strlen(bodies[k]), 100, &x,
                                         &n, run), PREDICT_FALLBACK, "%s",
                     bodies[k]);
    }
    /* a 0 byte inside the text ends the fast path short of its length */
    char *nul = strdup(good);
    *strchr(nul, ',') = 0;
    float *xn = NULL;
    size_t nn = 0;
    char rn[32];
    cr_assert_eq(predict_decode_fast(nul, strlen(good), 100, &xn, &nn, rn),
                 PREDICT_FALLBACK);
    free(nul);
    /* trailing garbage, and a batch over the limit */
    char *tail = malloc(strlen(good) + 4);
    sprintf(tail, "%sx", good);
    float *x = NULL;
    size_t n = 0;
    char run[32];
    cr_assert_eq(predict_decode_fast(tail, strlen(tail), 100, &x, &n, run),
                 PREDICT_FALLBACK);
    char *three = make_body(NULL, 3, "%.2f", &r, 0);
    cr_assert_eq(predict_decode_fast(three, strlen(three), 2, &x, &n, run),
                 PREDICT_FALLBACK);
    free(three);
    free(tail);
    free(good);
}

Test(predict, probabilities_round_trip_through_their_text)
{
    rng_state r;
    rng_seed(&r, 7);
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        float p = rng_uniform(&r);
        if (i % 2) p = ldexpf(p, -(int)rng_below(&r, 140));
        size_t n = enc_prob(buf, p);
        cr_assert(n < sizeof buf);
        buf[n] = 0;
        cr_assert(strtof(buf, NULL) == p, "%.9g written as %s", p, buf);
        cr_assert(strchr(buf, '.'), "%s is not a JSON real", buf);
    }
    size_t n = enc_prob(buf, 1.0f);
    cr_assert_eq(n, 3);
    cr_assert(memcmp(buf, "1.0", 3) == 0);
    n = enc_prob(buf, 0.0f);
    cr_assert(memcmp(buf, "0.0", 3) == 0 && n == 3);
}
