/* routes_static.c: the dashboard: GET / (web/index.html) and GET
 * /static/<name> (the other files of web/ and the chart library, uPlot).
 * The files are embedded in the binary at build time
 * (scripts/embed-files.sh), so mnistd needs no source tree and the browser
 * fetches nothing from the internet. */
#include <string.h>

#include "server/http/embedded.h"
#include "server/http/routes.h"


/* The media type for a file name, by its extension. */
static const char *media_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

static enum MHD_Result serve(http_ctx *c, const char *name)
{
    const mn_embedded *f = embedded_find(mn_web_files, mn_web_files_count,
                                         name);
    if (f) return http_bytes(c, 200, media_type(name), f->data, f->len);
    return http_error(c, 404, "not_found", "no such resource: /static/%s", name);
}

enum MHD_Result static_index(http_ctx *c)
{
    return serve(c, "index.html");
}

enum MHD_Result static_file(http_ctx *c)
{
    return serve(c, c->arg);
}

const mn_embedded *embedded_find(const mn_embedded *table, unsigned long n,
                                 const char *name)
{
    for (unsigned long i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}
