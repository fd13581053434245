/* test_onnx.c: the ONNX export of server/render/onnx.c, read back with
 * protobuf-c: the graph's operators in order, its input and outputs, and
 * initializers that hold the model's weights as model_layer_weights views
 * them (a convolution's transposed to [OC, C, K, K]), a convolution's pads
 * and a pool's window; a layer type without an emitter is an error naming
 * it, and a failed allocation a clean error. (The HTTP test
 * tests/http/test_onnx.py runs the files in onnxruntime.) */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cnn.h"
#include "engine/mlp.h"
#include "onnx.pb-c.h"
#include "server/render/onnx.h"
#include "tests/unit/fault.h"

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

/* A model of architecture a with parameters uniform in -0.5..0.5. */
static model *random_model(const model_arch *a)
{
    mn_err err = {{0}};
    model *m = model_new(a, 0, &err);
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

/* The attribute `name` of node n, which must be a list of integers. */
static const Onnx__AttributeProto *ints_attr(const Onnx__NodeProto *n,
                                             const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0) {
            cr_assert_eq(n->attribute[i]->type,
                         ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "%s", name);
            return n->attribute[i];
        }
    cr_assert_fail("node %s has no attribute %s", n->name, name);
    return NULL;
}

static void assert_ints(const Onnx__AttributeProto *a, const int64_t *v,
                        size_t n)
{
    cr_assert_eq(a->n_ints, n, "%s", a->name);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(a->ints[i], v[i], "%s[%zu]", a->name, i);
}

Test(onnx, cnn_graph_weights_pads_and_pools)
{
    /* 28x28 -> conv 3 of 4x4 valid -> 25x25 -> pool 3 (its last row and
     * column dropped) -> 8x8 -> conv 2 of 4x4 same (pads 1 above and left,
     * 2 below and right) -> 8x8, pool 1 (none) -> dense 6 -> 10 */
    const cnn_conv conv[] = {{3, 4, 3, 0}, {2, 4, 1, 1}};
    model_arch a = {.n_in = 784, .n_out = 10};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(&a, 2, conv, 1, (const int[]){6}, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&a, &err), 0, "%s", err.msg);
    model *m = random_model(&a);
    Onnx__ModelProto *p = export_and_read(m);
    const Onnx__GraphProto *g = p->graph;

    static const char *const ops[] = {"Reshape", "Conv", "Relu", "MaxPool",
                                      "Conv", "Relu", "Flatten", "Gemm",
                                      "Relu", "Gemm", "Softmax", "ArgMax"};
    cr_assert_eq(g->n_node, sizeof ops / sizeof ops[0]);
    for (size_t i = 0; i < g->n_node; i++)
        cr_assert_str_eq(g->node[i]->op_type, ops[i], "node %zu", i);
    cr_assert_str_eq(g->node[0]->input[0], "pixels");
    for (size_t i = 1; i < g->n_node; i++)
        cr_assert_str_eq(g->node[i]->input[0],
                         g->node[i < 11 ? i - 1 : 10]->output[0], "node %zu", i);

    /* the image: [-1, 1, 28, 28] */
    const Onnx__TensorProto *shape = initializer(g, g->node[0]->input[1]);
    cr_assert_eq(shape->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    cr_assert_eq(shape->n_int64_data, 4);
    const int64_t image[4] = {-1, 1, 28, 28};
    for (int k = 0; k < 4; k++) cr_assert_eq(shape->int64_data[k], image[k]);

    const Onnx__NodeProto *c0 = g->node[1], *pool = g->node[3],
                          *c1 = g->node[4], *flat = g->node[6];
    assert_ints(ints_attr(c0, "kernel_shape"), (const int64_t[]){4, 4}, 2);
    assert_ints(ints_attr(c0, "pads"), (const int64_t[]){0, 0, 0, 0}, 4);
    assert_ints(ints_attr(c0, "strides"), (const int64_t[]){1, 1}, 2);
    assert_ints(ints_attr(pool, "kernel_shape"), (const int64_t[]){3, 3}, 2);
    assert_ints(ints_attr(pool, "strides"), (const int64_t[]){3, 3}, 2);
    assert_ints(ints_attr(c1, "kernel_shape"), (const int64_t[]){4, 4}, 2);
    assert_ints(ints_attr(c1, "pads"), (const int64_t[]){1, 1, 2, 2}, 4);
    cr_assert_eq(flat->n_attribute, 1);
    cr_assert_eq(flat->attribute[0]->i, 1);

    /* convolution weights: ONNX's [OC, C, K, K] from the engine's
     * [C*K*K, OC], row (c*K + ki)*K + kj */
    const int C[2] = {1, 3}, OC[2] = {3, 2}, K[2] = {4, 4};
    for (int l = 0; l < 2; l++) {
        model_weights lw;
        model_layer_weights(m, l, &lw);
        char name[32];
        snprintf(name, sizeof name, "conv%d.weight", l);
        const Onnx__TensorProto *w = initializer(g, name);
        cr_assert_eq(w->n_dims, 4);
        const int64_t wd[4] = {OC[l], C[l], K[l], K[l]};
        for (int k = 0; k < 4; k++) cr_assert_eq(w->dims[k], wd[k], "%s", name);
        for (int o = 0; o < OC[l]; o++)
            for (int c = 0; c < C[l]; c++)
                for (int ki = 0; ki < K[l]; ki++)
                    for (int kj = 0; kj < K[l]; kj++) {
                        size_t r = (size_t)(c * K[l] + ki) * K[l] + kj;
                        size_t at = (((size_t)o * C[l] + c) * K[l] + ki) * K[l] + kj;
                        cr_assert_eq(w->float_data[at], lw.w[r * OC[l] + o],
                                     "%s[%d][%d][%d][%d]", name, o, c, ki, kj);
                    }
        snprintf(name, sizeof name, "conv%d.bias", l);
        const Onnx__TensorProto *b = initializer(g, name);
        cr_assert_eq(b->n_float_data, (size_t)OC[l]);
        cr_assert_eq(memcmp(b->float_data, lw.b, b->n_float_data * sizeof(float)), 0);
    }
    /* the dense layers read the flattened 2 x 8 x 8 map */
    const Onnx__TensorProto *d0 = initializer(g, "dense2.weight");
    cr_assert_eq(d0->dims[0], 2 * 8 * 8);
    cr_assert_eq(d0->dims[1], 6);
    cr_assert_eq(initializer(g, "dense3.weight")->dims[1], 10);
    cr_assert_eq(g->n_initializer, 9);
    onnx__model_proto__free_unpacked(p, NULL);
    model_free(m);
}

Test(onnx, layer_without_an_emitter_is_an_error)
{
    /* not a valid architecture: the exporter must refuse it before
     * reading weights */
    model m = {.arch = {.kind = &mlp_kind, .n_in = 784, .n_out = 10,
                        .n_layers = 1}};
    m.arch.layers[0] = (model_layer){.type = 99, .size = 4};
    mn_err err = {{0}};
    uint8_t *buf = (uint8_t *)&m;
    size_t len = 1;
    cr_assert_eq(onnx_export(&m, NULL, &buf, &len, &err), -1);
    cr_assert_null(buf);
    cr_assert_eq(len, 0);
    cr_assert(strstr(err.msg, "no ONNX export"), "%s", err.msg);

    /* a pool with no convolution before it */
    m.arch.layers[0] = (model_layer){.type = MODEL_LAYER_POOL, .kernel = 2,
                                     .stride = 2};
    cr_assert_eq(onnx_export(&m, NULL, &buf, &len, &err), -1);
    cr_assert(strstr(err.msg, "must follow a convolution"), "%s", err.msg);
}

static int export_call(void *ctx)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mn_err err = {{0}};
    int rc = onnx_export(ctx, "faults", &buf, &len, &err);
    if (rc) {
        cr_assert_null(buf);
        cr_assert(err.msg[0], "an error without a reason");
    }
    free(buf);
    return rc;
}

Test(onnx, out_of_memory_is_a_clean_error)
{
    const cnn_conv conv[] = {{2, 3, 2, 1}, {2, 3, 1, 0}};
    model_arch a = {.n_in = 784, .n_out = 10};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(&a, 2, conv, 0, NULL, 0.0f, &err), 0);
    model *m = random_model(&a);
    cr_assert_gt(fault_each(export_call, m), 0);
    model_free(m);
}
