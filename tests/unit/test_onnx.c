/* test_onnx.c: the ONNX export of server/render/onnx.c, read back with
 * protobuf-c: the graph's operators in order, its input and outputs, and
 * initializers that hold the model's weights as model_layer_weights views
 * them; a layer type without an emitter is an error naming it. (The
 * HTTP test tests/http/test_onnx.py runs the file in onnxruntime.) */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mlp.h"
#include "onnx.pb-c.h"
#include "server/render/onnx.h"

/* An mlp n_in -> hidden -> 10 with random parameters. */
static model *random_mlp(int n_in, int n_hidden, const int *hidden)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = n_in, .n_out = 10};
    mlp_arch(&a, n_hidden, hidden, 0.0f);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    rng_state rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) - 0.5f;
    return m;
}

static Onnx__ModelProto *export_and_read(const model *m)
{
    mn_err err = {{0}};
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(onnx_export(m, "a test", &buf, &len, &err), 0, "%s", err.msg);
    cr_assert(len > 0);
    Onnx__ModelProto *p = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(p, "the export is not a ModelProto");
    return p;
}

static const Onnx__TensorProto *initializer(const Onnx__GraphProto *g,
                                            const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0) return g->initializer[i];
    cr_assert_fail("no initializer %s", name);
    return NULL;
}

Test(onnx, dnn_graph_and_weights)
{
    model *m = random_mlp(20, 2, (const int[]){8, 6});
    Onnx__ModelProto *p = export_and_read(m);
    cr_assert_eq(p->ir_version, ONNX_IR_VERSION);
    cr_assert_eq(p->n_opset_import, 1);
    cr_assert_eq(p->opset_import[0]->version, ONNX_OPSET);
    cr_assert_str_eq(p->doc_string, "a test");
    const Onnx__GraphProto *g = p->graph;

    static const char *const ops[] = {"Gemm", "Relu", "Gemm", "Relu", "Gemm",
                                      "Softmax", "ArgMax"};
    cr_assert_eq(g->n_node, sizeof ops / sizeof ops[0]);
    for (size_t i = 0; i < g->n_node; i++)
        cr_assert_str_eq(g->node[i]->op_type, ops[i], "node %zu", i);
    /* each operator reads what the one before it wrote */
    cr_assert_str_eq(g->node[0]->input[0], "pixels");
    for (size_t i = 1; i < g->n_node; i++)
        cr_assert_str_eq(g->node[i]->input[0],
                         g->node[i < 6 ? i - 1 : 5]->output[0], "node %zu", i);
    cr_assert_str_eq(g->node[5]->output[0], "probabilities");
    cr_assert_str_eq(g->node[6]->output[0], "class");

    cr_assert_eq(g->n_input, 1);
    cr_assert_str_eq(g->input[0]->name, "pixels");
    const Onnx__TensorShapeProto *in = g->input[0]->type->tensor_type->shape;
    cr_assert_eq(in->n_dim, 2);
    cr_assert_str_eq(in->dim[0]->dim_param, "N");
    cr_assert_eq(in->dim[1]->dim_value, 20);
    cr_assert_eq(g->n_output, 2);
    cr_assert_eq(g->output[1]->type->tensor_type->elem_type,
                 ONNX__TENSOR_PROTO__DATA_TYPE__INT64);

    cr_assert_eq(g->n_initializer, 6);
    for (int l = 0; l < model_layer_count(&m->arch); l++) {
        model_weights lw;
        model_layer_weights(m, l, &lw);
        char name[32];
        snprintf(name, sizeof name, "dense%d.weight", l);
        const Onnx__TensorProto *w = initializer(g, name);
        cr_assert_eq(w->n_dims, 2);
        cr_assert_eq(w->dims[0], lw.n_in);
        cr_assert_eq(w->dims[1], lw.n_out);
        cr_assert_eq(w->n_float_data, (size_t)lw.n_in * lw.n_out);
        cr_assert_eq(memcmp(w->float_data, lw.w, w->n_float_data * sizeof(float)), 0);
        snprintf(name, sizeof name, "dense%d.bias", l);
        const Onnx__TensorProto *b = initializer(g, name);
        cr_assert_eq(b->n_float_data, (size_t)lw.n_out);
        cr_assert_eq(memcmp(b->float_data, lw.b, b->n_float_data * sizeof(float)), 0);
    }
    onnx__model_proto__free_unpacked(p, NULL);
    model_free(m);
}

Test(onnx, linear_is_one_gemm)
{
    model *m = random_mlp(784, 0, NULL);
    Onnx__ModelProto *p = export_and_read(m);
    const Onnx__GraphProto *g = p->graph;
    cr_assert_eq(g->n_node, 3);
    cr_assert_str_eq(g->node[0]->op_type, "Gemm");
    cr_assert_str_eq(g->node[0]->output[0], "logits");
    cr_assert_eq(g->n_initializer, 2);
    onnx__model_proto__free_unpacked(p, NULL);
    model_free(m);
}

Test(onnx, layer_without_an_emitter_is_an_error)
{
    /* not a valid mlp: the exporter must refuse it before reading weights */
    model m = {.arch = {.kind = &mlp_kind, .n_in = 784, .n_out = 10,
                        .n_layers = 1}};
    m.arch.layers[0] = (model_layer){.type = MODEL_LAYER_POOL, .kernel = 2,
                                     .stride = 2};
    mn_err err = {{0}};
    uint8_t *buf = (uint8_t *)&m;
    size_t len = 1;
    cr_assert_eq(onnx_export(&m, NULL, &buf, &len, &err), -1);
    cr_assert_null(buf);
    cr_assert_eq(len, 0);
    cr_assert(strstr(err.msg, "no ONNX export"), "%s", err.msg);
}
