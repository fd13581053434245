/* enc.c: JSON encoding of engine results. */
#include "enc.h"

#include <math.h>

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

json_t *enc_confusion(const char *set, const eval_result *e)
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
    return json_pack("{s:s, s:o, s:o, s:o, s:o}", "set", set, "labels", labels,
                     "counts", counts, "normalized", nm, "accuracy",
                     enc_real(e->accuracy));
}

json_t *enc_evaluation(const char *dataset, const eval_result *e)
{
    return json_pack("{s:s, s:I, s:o, s:o, s:o}", "dataset", dataset,
                     "examples", (json_int_t)e->examples,
                     "accuracy", enc_real(e->accuracy),
                     "log_loss", enc_real(e->log_loss),
                     "confusion", enc_confusion("test", e));
}
