/* log.h: the server's log on stderr. At run time every record is one JSON
 * object on its own line (requests, run state changes, errors); only the
 * start-up and shutdown notes of server/cmd/ are plain text, for a person
 * at a terminal.
 *
 * DESIGN (concurrency): any thread logs. Each line goes out with one
 * write(2) and no lock: lines from several threads never interleave, and
 * no thread waits on stdio's lock of stderr while another is in the system
 * call. Nothing is buffered, so a crash loses no line already logged. */
#ifndef MN_LOG_H
#define MN_LOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Writes one log line (len bytes, ending in a newline) to stderr with one
 * write(2). Errors are ignored: there is nowhere else to report them. */
void log_line(const char *line, size_t len);

/* Writes o as one compact JSON line (keys in insertion order, strings
 * escaped by jansson). Steals o; NULL (a failed json_pack) writes
 * nothing. */
void log_json(json_t *o);

/* A runtime error as one JSON line:
 *   {"ts":<ms since the epoch>,"event":event,"run":run,"error":error}
 * with "run" left out when run is 0. event is a fixed snake_case name
 * (borrowed), error the message (borrowed; NULL is written as null). */
void log_error(const char *event, int64_t run, const char *error);

#endif
