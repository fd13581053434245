/* enc.c: JSON encoding of engine results. */
#include "server/render/enc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t enc_prob(char *out, float pf)
{
    double p = pf;
    char *o = out;
    if (!(p > 0.0)) { /* 0, or anything not positive (never NaN here) */
        memcpy(out, "0.0", 3);
        return 3;
    }
    if (p >= 1.0) {
        memcpy(out, "1.0", 3);
        return 3;
    }
    /* p = m * 10^e10 with 1 <= m < 10; nine digits of m, rounded */
    int e10 = (int)floor(log10(p));
    uint64_t digits = (uint64_t)llround(p * pow(10.0, 8 - e10));
    if (digits >= 1000000000ULL) { /* rounding carried into a new digit */
        digits /= 10;
        e10++;
    }
    char d[9];
    for (int i = 8; i >= 0; i--) {
        d[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
    int nd = 9;
    while (nd > 1 && d[nd - 1] == '0') nd--; /* trailing zeros */
    if (e10 >= 0) { /* rounded up to 1.0 */
        memcpy(out, "1.0", 3);
        return 3;
    }
    if (e10 >= -4) { /* 0.000ddd: fixed notation */
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > e10; i--) *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    } else { /* d.ddde-XX */
        *o++ = d[0];
        *o++ = '.';
        if (nd > 1) {
            memcpy(o, d + 1, (size_t)nd - 1);
            o += nd - 1;
        } else {
            *o++ = '0';
        }
        *o++ = 'e';
        *o++ = '-';
        o += enc_u64(o, (uint64_t)-e10);
    }
    return (size_t)(o - out);
}

size_t enc_probs(char *out, const float *p, size_t n)
{
    char *o = out;
    for (size_t k = 0; k < n; k++) {
        if (k) *o++ = ',';
        o += enc_prob(o, p[k]);
    }
    return (size_t)(o - out);
}

size_t enc_u64(char *out, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = d[n - 1 - i];
    return n;
}

json_t *enc_real(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *enc_period(const train_period *p)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o}",
                     "period", (json_int_t)p->period,
                     "step", (json_int_t)p->step,
                     "train_log_loss", enc_real(p->train_log_loss),
                     "validation_log_loss", enc_real(p->validation_log_loss),
                     "validation_accuracy", enc_real(p->validation_accuracy),
                     "seconds", enc_real(p->seconds));
}

const char *const *enc_class_names(const char *dataset)
{
    const ds_builtin *b = ds_builtin_find(dataset);
    return b ? b->class_names : NULL;
}

json_t *enc_confusion(const char *set, const eval_result *e,
                      const char *const *class_names)
{
    double norm[DS_CLASSES][DS_CLASSES];
    eval_normalize(e->confusion, norm);
    json_t *labels = json_array(), *counts = json_array(), *nm = json_array();
    for (int t = 0; t < DS_CLASSES; t++) {
        json_t *cr = json_array(), *nr = json_array();
        for (int p = 0; p < DS_CLASSES; p++) {
            json_array_append_new(cr, json_integer(e->confusion[t][p]));
            json_array_append_new(nr, json_real(norm[t][p]));
        }
        json_array_append_new(labels, json_integer(t));
        json_array_append_new(counts, cr);
        json_array_append_new(nm, nr);
    }
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o}", "set", set, "labels",
                          labels, "counts", counts, "normalized", nm,
                          "accuracy", enc_real(e->accuracy));
    if (o && class_names) {
        json_t *names = json_array();
        for (int k = 0; k < DS_CLASSES; k++)
            json_array_append_new(names, json_string(class_names[k]));
        json_object_set_new(o, "class_names", names);
    }
    return o;
}

json_t *enc_evaluation(const char *dataset, const eval_result *e)
{
    return json_pack("{s:s, s:I, s:o, s:o, s:o}", "dataset", dataset,
                     "examples", (json_int_t)e->examples,
                     "accuracy", enc_real(e->accuracy),
                     "log_loss", enc_real(e->log_loss),
                     "confusion",
                     enc_confusion("test", e, enc_class_names(dataset)));
}

json_t *enc_time(int64_t ms)
{
    if (ms <= 0) return json_null();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}
