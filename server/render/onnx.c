/* onnx.c: a model as an ONNX file (see onnx.h). The protobuf messages live
 * in one builder (onnx_graph) of fixed capacity, sized by MODEL_MAX_LAYERS,
 * that holds every message, name and pointer array the ModelProto refers
 * to; the weights are referenced from the model, not copied, until
 * protobuf-c packs the whole into one buffer, except a convolution's,
 * which are transposed into buffers the builder owns. */
#include "server/render/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/layers.h"
#include "onnx.pb-c.h"

/* Capacities: per layer at most ONNX_NODES_PER_LAYER operators (a Reshape
 * or Flatten, the layer's own, a Relu) and two initializers, plus the
 * softmax and argmax and the Reshape's shape; at most ONNX_ATTRS_PER_NODE
 * attributes per operator (a Conv's kernel_shape, pads, strides), each of
 * at most ONNX_MAX_ATTR_INTS integers; the graph's input and two outputs. */
#define ONNX_NODES_PER_LAYER 3
#define ONNX_MAX_NODES (ONNX_NODES_PER_LAYER * (MODEL_MAX_LAYERS + 1) + 2)
#define ONNX_ATTRS_PER_NODE 3
#define ONNX_MAX_ATTRS (ONNX_ATTRS_PER_NODE * ONNX_MAX_NODES)
#define ONNX_MAX_ATTR_INTS 4
#define ONNX_MAX_INITS (2 * (MODEL_MAX_LAYERS + 1) + 1)
#define ONNX_MAX_NODE_INPUTS 3
#define ONNX_MAX_IO_RANK 2
#define ONNX_MAX_INIT_RANK 4
#define ONNX_NAME_LEN 32

/* One graph input or output: name, element type and shape. */
typedef struct onnx_io {
    Onnx__ValueInfoProto info;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dims[ONNX_MAX_IO_RANK];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[ONNX_MAX_IO_RANK];
} onnx_io;

typedef struct onnx_graph {
    Onnx__ModelProto model;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opset_ptrs[1];
    Onnx__GraphProto graph;

    Onnx__NodeProto nodes[ONNX_MAX_NODES];
    Onnx__NodeProto *node_ptrs[ONNX_MAX_NODES];
    char *node_inputs[ONNX_MAX_NODES][ONNX_MAX_NODE_INPUTS];
    char *node_outputs[ONNX_MAX_NODES][1];
    char node_names[ONNX_MAX_NODES][ONNX_NAME_LEN]; /* also its output's */

    Onnx__AttributeProto attrs[ONNX_MAX_ATTRS];
    Onnx__AttributeProto *attr_ptrs[ONNX_MAX_ATTRS];
    int64_t attr_ints[ONNX_MAX_ATTRS][ONNX_MAX_ATTR_INTS];
    size_t n_attrs;

    Onnx__TensorProto inits[ONNX_MAX_INITS];
    Onnx__TensorProto *init_ptrs[ONNX_MAX_INITS];
    int64_t init_dims[ONNX_MAX_INITS][ONNX_MAX_INIT_RANK];
    char init_names[ONNX_MAX_INITS][ONNX_NAME_LEN];
    int64_t reshape_to[4];          /* the Reshape's target shape */
    float *owned[MODEL_MAX_LAYERS]; /* transposed convolution weights */
    int n_owned;

    onnx_io io[3]; /* pixels; probabilities, class */
    Onnx__ValueInfoProto *input_ptrs[1];
    Onnx__ValueInfoProto *output_ptrs[2];

    char *value;   /* the tensor the last operator wrote (borrowed) */
    int n_weighted; /* layers with weights exported so far */
    /* the shape of value: [N, C, H, W] when spatial, else [N, features] */
    int spatial;
    int C, H, W;
} onnx_graph;

/* Adds initializer `name` of shape [dims[0], ..., dims[rank-1]] holding
 * float values f32 or, when f32 is NULL, int64 values i64 (borrowed until
 * packing). Returns its name, or NULL when full. */
static char *graph_init(onnx_graph *g, const char *name, const float *f32,
                        const int64_t *i64, const int64_t *dims, int rank)
{
    size_t i = g->graph.n_initializer;
    if (i >= ONNX_MAX_INITS || rank > ONNX_MAX_INIT_RANK) return NULL;
    Onnx__TensorProto *t = &g->inits[i];
    onnx__tensor_proto__init(t);
    snprintf(g->init_names[i], ONNX_NAME_LEN, "%s", name);
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        g->init_dims[i][k] = dims[k];
        n *= (size_t)dims[k];
    }
    t->name = g->init_names[i];
    t->n_dims = (size_t)rank;
    t->dims = g->init_dims[i];
    t->has_data_type = 1;
    if (f32) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = n;
        t->float_data = (float *)f32; /* only read by the packer */
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->n_int64_data = n;
        t->int64_data = (int64_t *)i64;
    }
    g->init_ptrs[i] = t;
    g->graph.n_initializer = i + 1;
    return t->name;
}

/* Appends operator op reading inputs in[0 .. n_in-1] and writing a tensor
 * named `name` (also the node's name), which becomes g->value. Returns
 * the node, or NULL when full. */
static Onnx__NodeProto *graph_node(onnx_graph *g, const char *op,
                                   char *const *in, int n_in,
                                   const char *name)
{
    size_t i = g->graph.n_node;
    if (i >= ONNX_MAX_NODES || n_in > ONNX_MAX_NODE_INPUTS) return NULL;
    Onnx__NodeProto *n = &g->nodes[i];
    onnx__node_proto__init(n);
    snprintf(g->node_names[i], ONNX_NAME_LEN, "%s", name);
    for (int k = 0; k < n_in; k++) g->node_inputs[i][k] = in[k];
    g->node_outputs[i][0] = g->node_names[i];
    n->op_type = (char *)op;
    n->name = g->node_names[i];
    n->n_input = (size_t)n_in;
    n->input = g->node_inputs[i];
    n->n_output = 1;
    n->output = g->node_outputs[i];
    g->node_ptrs[i] = n;
    g->graph.n_node = i + 1;
    g->value = g->node_names[i];
    return n;
}

/* A new attribute `name` of node n. A node's attributes are one run of
 * attr_ptrs, so they are added right after the node, before the next
 * node's. Returns it, or NULL when full. */
static Onnx__AttributeProto *graph_attr(onnx_graph *g, Onnx__NodeProto *n,
                                        const char *name)
{
    if (g->n_attrs >= ONNX_MAX_ATTRS) return NULL;
    Onnx__AttributeProto *a = &g->attrs[g->n_attrs];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    g->attr_ptrs[g->n_attrs] = a;
    if (!n->attribute) n->attribute = &g->attr_ptrs[g->n_attrs];
    n->n_attribute++;
    g->n_attrs++;
    return a;
}

/* Gives node n the integer attribute name = v. Returns 0, or -1 when
 * full. */
static int graph_attr_int(onnx_graph *g, Onnx__NodeProto *n, const char *name,
                          int64_t v)
{
    Onnx__AttributeProto *a = graph_attr(g, n, name);
    if (!a) return -1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    return 0;
}

/* Gives node n the attribute name = [v[0], ..., v[len-1]] (integers,
 * len <= ONNX_MAX_ATTR_INTS). Returns 0, or -1 when full. */
static int graph_attr_ints(onnx_graph *g, Onnx__NodeProto *n,
                           const char *name, const int64_t *v, int len)
{
    if (len > ONNX_MAX_ATTR_INTS) return -1;
    size_t i = g->n_attrs;
    Onnx__AttributeProto *a = graph_attr(g, n, name);
    if (!a) return -1;
    memcpy(g->attr_ints[i], v, sizeof(int64_t) * (size_t)len);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)len;
    a->ints = g->attr_ints[i];
    return 0;
}

/* Describes graph input/output `name` of element type elem and shape
 * [N, dims[1], ...] (N free) into io; rank 1 or 2. */
static Onnx__ValueInfoProto *graph_io(onnx_io *io, const char *name,
                                      int32_t elem, int rank, int64_t width)
{
    onnx__value_info_proto__init(&io->info);
    onnx__type_proto__init(&io->type);
    onnx__type_proto__tensor__init(&io->tensor);
    onnx__tensor_shape_proto__init(&io->shape);
    for (int k = 0; k < rank; k++) {
        Onnx__TensorShapeProto__Dimension *d = &io->dims[k];
        onnx__tensor_shape_proto__dimension__init(d);
        if (k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = width;
        }
        io->dim_ptrs[k] = d;
    }
    io->shape.n_dim = (size_t)rank;
    io->shape.dim = io->dim_ptrs;
    io->tensor.has_elem_type = 1;
    io->tensor.elem_type = elem;
    io->tensor.shape = &io->shape;
    io->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    io->type.tensor_type = &io->tensor;
    io->info.name = (char *)name;
    io->info.type = &io->type;
    return &io->info;
}

/* A layer type's emitter: appends the operators of hidden layer l
 * (l == a->n_layers: the implied output layer, a dense one without
 * activation) reading g->value. Returns 0, or -1 with a reason. */
typedef int (*layer_export_fn)(onnx_graph *g, const model *m, int l,
                               mn_err *err);

/* The next layer with weights as model_layer_weights views it, checked to
 * read n_in features and write n_out; 0, or -1 with a reason. */
static int next_weights(onnx_graph *g, const model *m, int l, int n_in,
                        int n_out, model_weights *lw, mn_err *err)
{
    int wl = g->n_weighted++;
    if (wl >= model_layer_count(&m->arch))
        return mn_errf(err, "layer %d: the model has no weights for it", l);
    model_layer_weights(m, wl, lw);
    if (lw->n_in != n_in || lw->n_out != n_out)
        return mn_errf(err, "layer %d: weights [%d, %d], expected [%d, %d]",
                       l, lw->n_in, lw->n_out, n_in, n_out);
    return 0;
}

/* Dense: Flatten(axis 1) when the input is still a feature map [N, C, H, W]
 * (NCHW flattens as it lies in memory, as the engine's does), then
 * Gemm(x, W [n_in, n_out], b [n_out]) as model_layer_weights views them
 * (x W + b), then Relu when hidden. */
static int export_dense(onnx_graph *g, const model *m, int l, mn_err *err)
{
    char name[ONNX_NAME_LEN];
    int n_in = m->arch.n_in;
    if (g->spatial) {
        Onnx__NodeProto *f = graph_node(g, "Flatten", &g->value, 1, "flatten");
        if (!f || graph_attr_int(g, f, "axis", 1))
            return mn_errf(err, "layer %d: the graph is full", l);
        g->spatial = 0;
        n_in = g->C * g->H * g->W;
    } else if (g->n_weighted > 0) {
        model_weights prev;
        model_layer_weights(m, g->n_weighted - 1, &prev);
        n_in = prev.n_out;
    }
    int n_out = l == m->arch.n_layers ? m->arch.n_out
                                      : (int)m->arch.layers[l].size;
    int wl = g->n_weighted;
    model_weights lw;
    if (next_weights(g, m, l, n_in, n_out, &lw, err)) return -1;
    int64_t wdims[2] = {lw.n_in, lw.n_out}, bdims[1] = {lw.n_out};
    snprintf(name, sizeof name, "dense%d.weight", wl);
    char *w = graph_init(g, name, lw.w, NULL, wdims, 2);
    snprintf(name, sizeof name, "dense%d.bias", wl);
    char *b = graph_init(g, name, lw.b, NULL, bdims, 1);
    char *in[3] = {g->value, w, b};
    snprintf(name, sizeof name, l == m->arch.n_layers ? "logits" : "dense%d",
             wl);
    if (!w || !b || !graph_node(g, "Gemm", in, 3, name))
        return mn_errf(err, "layer %d: the graph is full", l);
    if (l == m->arch.n_layers) return 0;
    snprintf(name, sizeof name, "relu%d", wl);
    if (!graph_node(g, "Relu", &g->value, 1, name))
        return mn_errf(err, "layer %d: the graph is full", l);
    return 0;
}

/* Convolution (stride 1, "valid" or "same"): first, when the input is
 * still the pixels [N, n_in], a Reshape to one channel [N, 1, side, side]
 * (side * side = n_in, rows of the image in order, as the engine reads
 * them); then Conv(x, W [OC, C, K, K], b [OC]) with the engine's zero
 * padding as explicit pads [top, left, bottom, right] (nn_conv2d_dims_set:
 * an even kernel's extra row and column of "same" padding go below and
 * right), then Relu. The engine's weights [C*K*K, OC] (layers.h, row
 * (c*K + ki)*K + kj) are transposed into the ONNX order. */
static int export_conv(onnx_graph *g, const model *m, int l, mn_err *err)
{
    const model_layer *y = &m->arch.layers[l];
    char name[ONNX_NAME_LEN];
    if (!g->spatial) {
        int side = (int)lround(sqrt((double)m->arch.n_in));
        if (g->n_weighted > 0 || side * side != m->arch.n_in)
            return mn_errf(err, "layer %d: a convolution reads the square "
                           "image itself, not %d features", l, m->arch.n_in);
        g->reshape_to[0] = -1;
        g->reshape_to[1] = 1;
        g->reshape_to[2] = g->reshape_to[3] = side;
        int64_t sdims[1] = {4};
        char *in[2] = {g->value,
                       graph_init(g, "image_shape", NULL, g->reshape_to, sdims,
                                  1)};
        if (!in[1] || !graph_node(g, "Reshape", in, 2, "image"))
            return mn_errf(err, "layer %d: the graph is full", l);
        g->spatial = 1;
        g->C = 1;
        g->H = g->W = side;
    }
    nn_conv2d_dims d;
    nn_conv2d_dims_set(&d, g->C, g->H, g->W, (int)y->size, (int)y->kernel,
                       y->type == MODEL_LAYER_CONV_SAME);
    int wl = g->n_weighted, CKK = d.C * d.K * d.K;
    model_weights lw;
    if (next_weights(g, m, l, CKK, d.OC, &lw, err)) return -1;
    if (g->n_owned >= MODEL_MAX_LAYERS)
        return mn_errf(err, "layer %d: the graph is full", l);
    float *wt = malloc(sizeof(float) * (size_t)CKK * d.OC);
    if (!wt)
        return mn_errf(err, "layer %d: out of memory for its weights", l);
    g->owned[g->n_owned++] = wt;
    for (int o = 0; o < d.OC; o++)
        for (int r = 0; r < CKK; r++)
            wt[(size_t)o * CKK + r] = lw.w[(size_t)r * d.OC + o];
    int64_t wdims[4] = {d.OC, d.C, d.K, d.K}, bdims[1] = {d.OC};
    snprintf(name, sizeof name, "conv%d.weight", wl);
    char *w = graph_init(g, name, wt, NULL, wdims, 4);
    snprintf(name, sizeof name, "conv%d.bias", wl);
    char *b = graph_init(g, name, lw.b, NULL, bdims, 1);
    char *in[3] = {g->value, w, b};
    snprintf(name, sizeof name, "conv%d", wl);
    Onnx__NodeProto *c = w && b ? graph_node(g, "Conv", in, 3, name) : NULL;
    const int64_t kernel[2] = {d.K, d.K}, strides[2] = {1, 1};
    const int64_t pads[4] = {d.pad_t, d.pad_l, d.OH - d.H + d.K - 1 - d.pad_t,
                             d.OW - d.W + d.K - 1 - d.pad_l};
    if (!c || graph_attr_ints(g, c, "kernel_shape", kernel, 2) ||
        graph_attr_ints(g, c, "pads", pads, 4) ||
        graph_attr_ints(g, c, "strides", strides, 2))
        return mn_errf(err, "layer %d: the graph is full", l);
    snprintf(name, sizeof name, "relu%d", wl);
    if (!graph_node(g, "Relu", &g->value, 1, name))
        return mn_errf(err, "layer %d: the graph is full", l);
    g->C = d.OC;
    g->H = d.OH;
    g->W = d.OW;
    return 0;
}

/* Max pooling of P x P windows, stride P: MaxPool with ONNX's default
 * floor rounding, which drops a trailing row or column that does not fill
 * a window, as nn_maxpool_forward does. */
static int export_pool(onnx_graph *g, const model *m, int l, mn_err *err)
{
    const model_layer *y = &m->arch.layers[l];
    if (!g->spatial)
        return mn_errf(err, "layer %d: a pool must follow a convolution", l);
    char name[ONNX_NAME_LEN];
    snprintf(name, sizeof name, "pool%d", l);
    const int64_t P = y->kernel, kernel[2] = {P, P}, strides[2] = {P, P};
    Onnx__NodeProto *p = graph_node(g, "MaxPool", &g->value, 1, name);
    if (!p || graph_attr_ints(g, p, "kernel_shape", kernel, 2) ||
        graph_attr_ints(g, p, "strides", strides, 2))
        return mn_errf(err, "layer %d: the graph is full", l);
    g->H /= (int)P;
    g->W /= (int)P;
    return 0;
}

/* The emitters by model_layer_type; NULL: no export. */
static const layer_export_fn layer_exports[] = {
    [MODEL_LAYER_DENSE] = export_dense,
    [MODEL_LAYER_CONV] = export_conv,
    [MODEL_LAYER_POOL] = export_pool,
    [MODEL_LAYER_CONV_SAME] = export_conv,
};

static int export_layer(onnx_graph *g, const model *m, int l, uint32_t type,
                        mn_err *err)
{
    layer_export_fn f = type < sizeof layer_exports / sizeof layer_exports[0]
                            ? layer_exports[type] : NULL;
    if (!f)
        return mn_errf(err, "layer %d (type %u) of a %s model has no ONNX "
                       "export", l, (unsigned)type, m->arch.kind->name);
    return f(g, m, l, err);
}

/* Fills g with the graph of m. Returns 0, or -1 with a reason. */
static int build(onnx_graph *g, const model *m, const char *doc, mn_err *err)
{
    const model_arch *a = &m->arch;
    onnx__model_proto__init(&g->model);
    onnx__operator_set_id_proto__init(&g->opset);
    onnx__graph_proto__init(&g->graph);
    g->opset.domain = "";
    g->opset.has_version = 1;
    g->opset.version = ONNX_OPSET;
    g->opset_ptrs[0] = &g->opset;
    g->graph.name = "mnistd";
    g->graph.node = g->node_ptrs;
    g->graph.initializer = g->init_ptrs;

    g->input_ptrs[0] = graph_io(&g->io[0], "pixels",
                                ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
                                a->n_in);
    g->graph.n_input = 1;
    g->graph.input = g->input_ptrs;
    g->value = "pixels";

    for (int l = 0; l < a->n_layers; l++)
        if (export_layer(g, m, l, a->layers[l].type, err)) return -1;
    if (export_layer(g, m, a->n_layers, MODEL_LAYER_DENSE, err)) return -1;

    Onnx__NodeProto *sm = graph_node(g, "Softmax", &g->value, 1,
                                     "probabilities");
    if (!sm || graph_attr_int(g, sm, "axis", 1))
        return mn_errf(err, "softmax: the graph is full");
    Onnx__NodeProto *am = graph_node(g, "ArgMax", &g->value, 1, "class");
    if (!am || graph_attr_int(g, am, "axis", 1) ||
        graph_attr_int(g, am, "keepdims", 0))
        return mn_errf(err, "argmax: the graph is full");

    g->output_ptrs[0] = graph_io(&g->io[1], "probabilities",
                                 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
                                 a->n_out);
    g->output_ptrs[1] = graph_io(&g->io[2], "class",
                                 ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, 0);
    g->graph.n_output = 2;
    g->graph.output = g->output_ptrs;

    g->model.has_ir_version = 1;
    g->model.ir_version = ONNX_IR_VERSION;
    g->model.n_opset_import = 1;
    g->model.opset_import = g->opset_ptrs;
    g->model.producer_name = "mnistd";
    g->model.doc_string = (char *)doc;
    g->model.graph = &g->graph;
    return 0;
}

int onnx_export(const model *m, const char *doc, uint8_t **out, size_t *len,
                mn_err *err)
{
    int rc = -1;
    *out = NULL;
    *len = 0;
    onnx_graph *g = calloc(1, sizeof *g);
    if (!g) {
        mn_errf(err, "out of memory building the ONNX graph");
        goto done;
    }
    if (build(g, m, doc, err)) goto done;
    size_t n = onnx__model_proto__get_packed_size(&g->model);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        mn_errf(err, "out of memory for an ONNX file of %zu bytes", n);
        goto done;
    }
    *len = onnx__model_proto__pack(&g->model, buf);
    *out = buf;
    rc = 0;
done:
    if (g)
        for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g);
    return rc;
}
