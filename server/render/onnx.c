/* onnx.c: a model as an ONNX file (see onnx.h). The protobuf messages live
 * in one builder (onnx_graph) of fixed capacity, sized by MODEL_MAX_LAYERS,
 * that holds every message, name and pointer array the ModelProto refers
 * to; the weights are referenced from the model, not copied, until
 * protobuf-c packs the whole into one buffer. */
#include "server/render/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

/* Capacities: per layer at most ONNX_NODES_PER_LAYER operators and two
 * initializers, plus the softmax and argmax; one attribute per operator at
 * most; the graph's input and two outputs. */
#define ONNX_NODES_PER_LAYER 2
#define ONNX_MAX_NODES (ONNX_NODES_PER_LAYER * (MODEL_MAX_LAYERS + 1) + 2)
#define ONNX_MAX_ATTRS ONNX_MAX_NODES
#define ONNX_MAX_INITS (2 * (MODEL_MAX_LAYERS + 1))
#define ONNX_MAX_NODE_INPUTS 3
#define ONNX_MAX_RANK 2
#define ONNX_NAME_LEN 32

/* One graph input or output: name, element type and shape. */
typedef struct onnx_io {
    Onnx__ValueInfoProto info;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dims[ONNX_MAX_RANK];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[ONNX_MAX_RANK];
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
    size_t n_attrs;

    Onnx__TensorProto inits[ONNX_MAX_INITS];
    Onnx__TensorProto *init_ptrs[ONNX_MAX_INITS];
    int64_t init_dims[ONNX_MAX_INITS][ONNX_MAX_RANK];
    char init_names[ONNX_MAX_INITS][ONNX_NAME_LEN];

    onnx_io io[3]; /* pixels; probabilities, class */
    Onnx__ValueInfoProto *input_ptrs[1];
    Onnx__ValueInfoProto *output_ptrs[2];

    char *value;   /* the tensor the last operator wrote (borrowed) */
    int n_weighted; /* layers with weights exported so far */
} onnx_graph;

/* Adds initializer `name` of float values data [dims[0], ..., dims[rank-1]]
 * (borrowed until packing). Returns its name, or NULL when full. */
static char *graph_init(onnx_graph *g, const char *name, const float *data,
                        const int64_t *dims, int rank)
{
    size_t i = g->graph.n_initializer;
    if (i >= ONNX_MAX_INITS || rank > ONNX_MAX_RANK) return NULL;
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
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = n;
    t->float_data = (float *)data; /* only read by the packer */
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

/* Gives node n the integer attribute name = v. A node's attributes are
 * one run of attr_ptrs, so they are added right after the node, before
 * the next node's. Returns 0, or -1 when full. */
static int graph_attr_int(onnx_graph *g, Onnx__NodeProto *n, const char *name,
                          int64_t v)
{
    if (g->n_attrs >= ONNX_MAX_ATTRS) return -1;
    Onnx__AttributeProto *a = &g->attrs[g->n_attrs];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    g->attr_ptrs[g->n_attrs] = a;
    if (!n->attribute) n->attribute = &g->attr_ptrs[g->n_attrs];
    n->n_attribute++;
    g->n_attrs++;
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

/* Dense: Gemm(x, W [n_in, n_out], b [n_out]) as model_layer_weights views
 * them (x W + b), then Relu when hidden. */
static int export_dense(onnx_graph *g, const model *m, int l, mn_err *err)
{
    int wl = g->n_weighted++;
    if (wl >= model_layer_count(&m->arch))
        return mn_errf(err, "layer %d: the model has no weights for it", l);
    model_weights lw;
    model_layer_weights(m, wl, &lw);
    char name[ONNX_NAME_LEN];
    int64_t wdims[2] = {lw.n_in, lw.n_out}, bdims[1] = {lw.n_out};
    snprintf(name, sizeof name, "dense%d.weight", wl);
    char *w = graph_init(g, name, lw.w, wdims, 2);
    snprintf(name, sizeof name, "dense%d.bias", wl);
    char *b = graph_init(g, name, lw.b, bdims, 1);
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

/* The emitters by model_layer_type; NULL: not exportable yet. */
static const layer_export_fn layer_exports[] = {
    [MODEL_LAYER_DENSE] = export_dense,
};

/* The emitter of a layer type, or NULL. */
static layer_export_fn layer_export(uint32_t type)
{
    return type < sizeof layer_exports / sizeof layer_exports[0]
               ? layer_exports[type] : NULL;
}

int onnx_exportable(const model_arch *a, mn_err *err)
{
    for (int l = 0; l < a->n_layers; l++)
        if (!layer_export(a->layers[l].type))
            return mn_errf(err, "layer %d (type %u) of a %s model has no ONNX "
                           "export yet", l, (unsigned)a->layers[l].type,
                           a->kind->name);
    return 0;
}

static int export_layer(onnx_graph *g, const model *m, int l, uint32_t type,
                        mn_err *err)
{
    layer_export_fn f = layer_export(type);
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
    free(g);
    return rc;
}
