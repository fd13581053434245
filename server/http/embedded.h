/* embedded.h: files compiled into the binary at build time
 * (scripts/embed-files.sh): the dashboard and the OpenAPI document.
 * Ownership: read-only static data. */
#ifndef MN_EMBEDDED_H
#define MN_EMBEDDED_H

typedef struct mn_embedded {
    const char *name;            /* the file's base name */
    const unsigned char *data;   /* its bytes, NUL-terminated */
    unsigned long len;           /* without the NUL */
} mn_embedded;

/* web/ and the chart library (served by routes_static.c) */
extern const mn_embedded mn_web_files[];
extern const unsigned long mn_web_files_count;

/* openapi.yaml (served by routes_misc.c) */
extern const mn_embedded mn_doc_files[];
extern const unsigned long mn_doc_files_count;

/* The file called name in table[0..n), or NULL. */
const mn_embedded *embedded_find(const mn_embedded *table, unsigned long n,
                                 const char *name);

#endif
