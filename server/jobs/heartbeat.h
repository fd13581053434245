/* heartbeat.h: a node's heartbeat: its registration in the store renewed
 * every second, the leases of the runs it trains renewed with it, the
 * runs of dead nodes reaped, and whether the database can be reached.
 *
 * DESIGN (concurrency): one thread per node with its own store
 * connection. Every HEARTBEAT_MS it (1) renews the node's row (heartbeat_at,
 * busy = the pool's training workers) and the leases of its running runs
 * to now + --lease-seconds (store_node_heartbeat; a node whose row is gone
 * registers again), and stops training any run it no longer holds (its
 * lease expired before a renewal reached the database and another node
 * took it over: pool_fence); (2) reaps the runs whose lease expired,
 * whichever node held them (store_lease_reap: back to the queue to resume
 * from their newest checkpoint on the node that claims them, or failed
 * once their node was lost HEARTBEAT_MAX_CRASHES times), waking this
 * node's idle workers when some came back, and forgets the nodes dead for
 * HEARTBEAT_FORGET_MS (store_node_forget); (3) records in app->store_ready
 * whether the database answered (GET /healthz's ready). Every live node
 * reaps; on PostgreSQL the reap's row locks (SKIP LOCKED) keep two nodes
 * from changing one run. A lease of L seconds renewed every second
 * survives L - 1 missed heartbeats; a dead node's runs come back within L
 * seconds plus one heartbeat of the node that reaps them. heartbeat_stop
 * wakes the thread (a condition variable) and joins it; nothing else is
 * shared but the app's modules, which lock for themselves, and
 * store_ready (atomic).
 *
 * The leases and rescue follow the Postgres job queues (River's rescuer,
 * Oban's Lifeline, graphile-worker's locked_at expiry): see
 * server/store/nodes.c. */
#ifndef MN_HEARTBEAT_H
#define MN_HEARTBEAT_H

#include "engine/err.h"

#define HEARTBEAT_MS 1000
/* a run whose training lost its node this many times ends failed */
#define HEARTBEAT_MAX_CRASHES 3
/* a node without a heartbeat for this long (and without runs) is
 * forgotten: it leaves GET /nodes */
#define HEARTBEAT_FORGET_MS (3600 * 1000)

struct app;
typedef struct heartbeat heartbeat;

/* Starts the heartbeat of the node named app->node_name (set, and
 * registered with store_node_register, before this call). The app is
 * borrowed until heartbeat_stop. NULL with a reason. */
heartbeat *heartbeat_start(struct app *a, mn_err *err);

/* Stops the thread (at once, not at the next beat), joins it and frees
 * it. NULL is a no-op. */
void heartbeat_stop(heartbeat *h);

#endif
