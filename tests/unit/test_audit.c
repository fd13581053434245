/* test_audit.c: the audit trail's choices (server/http/audit.c): which
 * requests of the route table get an audit line (unsafe methods answered
 * 2xx, inference POSTs excepted), and the resource a path names. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <string.h>

#include "server/http/audit.h"
#include "server/http/routes.h"

/* The route of the table with this method and pattern. */
static const route *find_route(const char *method, const char *pattern)
{
    for (size_t i = 0; i < http_n_routes; i++)
        if (!strcmp(http_routes[i].method, method) &&
            !strcmp(http_routes[i].pattern, pattern))
            return &http_routes[i];
    cr_assert_fail("no route %s %s", method, pattern);
    return NULL;
}

/* audit_resource(path) dumped compactly with sorted keys, compared. */
static void expect_resource(const char *path, const char *want)
{
    json_t *o = audit_resource(path);
    cr_assert_not_null(o, "%s", path);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(s, want, "%s", path);
    free(s);
    json_decref(o);
}

Test(audit, every_unsafe_route_but_inference_is_audited_on_2xx)
{
    size_t audited = 0;
    for (size_t i = 0; i < http_n_routes; i++) {
        const route *rt = &http_routes[i];
        int unsafe = strcmp(rt->method, "GET") != 0;
        int inference = rt->fn == predict_post || rt->fn == v2_infer ||
                        rt->fn == tfs_predict;
        cr_expect_eq(audit_wanted(rt, rt->method, 200), unsafe && !inference,
                     "%s %s", rt->method, rt->pattern);
        cr_expect_eq(audit_wanted(rt, rt->method, 204), unsafe && !inference,
                     "%s %s", rt->method, rt->pattern);
        /* a refused request changed nothing */
        for (unsigned st = 300; st < 600; st += 100)
            cr_expect_eq(audit_wanted(rt, rt->method, st), 0, "%s %s %u",
                         rt->method, rt->pattern, st);
        audited += audit_wanted(rt, rt->method, 201);
    }
    /* the table has creates, deletes, cancels, alias puts... */
    cr_assert_geq(audited, 10);
    const route *create = find_route("POST", "/runs");
    cr_assert(audit_wanted(create, "POST", 202));
    cr_assert_not(audit_wanted(create, "HEAD", 200));
    cr_assert_not(audit_wanted(NULL, "POST", 200)); /* no route matched */
    cr_assert_not(audit_wanted(find_route("POST", "/predict"), "POST", 200));
    cr_assert_not(audit_wanted(find_route("GET", "/runs/{}"), "GET", 200));
}

Test(audit, a_path_names_its_resource)
{
    expect_resource("/runs/12/cancel", "{\"run\":\"12\"}");
    expect_resource("/runs/12", "{\"run\":\"12\"}");
    expect_resource("/runs", "{}");
    expect_resource("/predict", "{}");
    expect_resource("/", "{}");
    expect_resource("", "{}");
    expect_resource("/datasets/digits-2", "{\"dataset\":\"digits-2\"}");
    expect_resource("/models/digits/versions/3",
                    "{\"model\":\"digits\",\"version\":\"3\"}");
    expect_resource("/models/digits/aliases/production",
                    "{\"alias\":\"production\",\"model\":\"digits\"}");
    expect_resource("/v1/models/digits:predict", "{\"model\":\"digits\"}");
    expect_resource("/v2/models/digits/versions/2/infer",
                    "{\"model\":\"digits\",\"version\":\"2\"}");
    /* a collection without a name after it, doubled slashes */
    expect_resource("/models/", "{}");
    expect_resource("//runs//7/", "{\"run\":\"7\"}");
}

Test(audit, a_long_name_is_cut_and_a_bad_one_is_null)
{
    char path[300] = "/datasets/";
    memset(path + strlen(path), 'a', 200);
    json_t *o = audit_resource(path);
    cr_assert_not_null(o);
    cr_assert_eq(strlen(json_string_value(json_object_get(o, "dataset"))), 79);
    json_decref(o);
    cr_assert_null(audit_resource("/runs/\xff\xfe"));
}
