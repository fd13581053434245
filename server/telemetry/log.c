/* log.c: JSON log lines on stderr (design in log.h). */
#include "server/telemetry/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/app.h"

void log_line(const char *line, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* nowhere to log: nothing else to do */
        off += (size_t)w;
    }
}

void log_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return;
    size_t n = strlen(s);
    char *line = realloc(s, n + 1); /* room for the newline */
    if (line) {
        line[n] = '\n';
        log_line(line, n + 1);
        s = line;
    }
    free(s);
}

void log_error(const char *event, int64_t run, const char *error)
{
    json_t *o = json_pack("{s:I, s:s}", "ts", (json_int_t)app_now_ms(),
                          "event", event);
    if (o && run) json_object_set_new(o, "run", json_integer(run));
    json_t *e = error ? json_string(error) : json_null();
    if (!e && error) {
        /* not UTF-8 (a file name, say): keep the ASCII, mark the rest */
        char *a = strdup(error);
        for (char *p = a; p && *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        e = a ? json_string(a) : NULL;
        free(a);
    }
    if (o) json_object_set_new(o, "error", e ? e : json_null());
    else json_decref(e);
    log_json(o);
}
