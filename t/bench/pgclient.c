/* pgclient: the two libpq clients `make bench` needs beside pgbench and psql.
 *
 *   pgclient idle N CONNINFO   opens N connections and holds them ("progress K" every 100),
 *                              prints "connected N SECONDS" and waits for a line on stdin, then runs SELECT 1 on each one
 *                              (closing each after its query, so a session-mode pool can
 *                              serve them one by one) and prints "queried K".
 *   pgclient probe CONNINFO TIMEOUT_S
 *                              tries "connect + INSERT INTO bench_failover" every 20 ms, each
 *                              try bounded to 300 ms for the connection and 1 s for the
 *                              write; prints CLOCK_MONOTONIC seconds of the first success.
 *
 * It only measures; it never retries a failed idle connection (the driver reports it). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libpq-fe.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Waits until the connection's socket is ready for what PQconnectPoll asked, or the
 * deadline; returns 0 at the deadline. */
static int wait_socket(PGconn* conn, int for_write, double deadline) {
    struct pollfd p = {.fd = PQsocket(conn), .events = for_write ? POLLOUT : POLLIN};
    for (;;) {
        int ms = (int)((deadline - now_s()) * 1000);
        if (ms <= 0) return 0;
        int n = poll(&p, 1, ms);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return 0;
    }
}

/* A connection within `seconds`, or NULL. */
static PGconn* connect_bounded(const char* conninfo, double seconds) {
    double deadline = now_s() + seconds;
    PGconn* conn = PQconnectStart(conninfo);
    if (conn == NULL) return NULL;
    if (PQstatus(conn) == CONNECTION_BAD) {
        PQfinish(conn);
        return NULL;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) return conn;
        if (st == PGRES_POLLING_FAILED) break;
        if (!wait_socket(conn, st == PGRES_POLLING_WRITING, deadline)) break;
        st = PQconnectPoll(conn);
    }
    PQfinish(conn);
    return NULL;
}

/* Runs sql within `seconds`; 1 if it returned COMMAND_OK or TUPLES_OK. */
static int exec_bounded(PGconn* conn, const char* sql, double seconds) {
    double deadline = now_s() + seconds;
    if (!PQsendQuery(conn, sql)) return 0;
    int ok = 1;
    for (;;) {
        while (PQisBusy(conn)) {
            if (!wait_socket(conn, 0, deadline) || !PQconsumeInput(conn)) return 0;
        }
        PGresult* r = PQgetResult(conn);
        if (r == NULL) return ok;
        ExecStatusType s = PQresultStatus(r);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) ok = 0;
        PQclear(r);
    }
}

static int idle(int n, const char* conninfo) {
    raise_fd_limit();
    PGconn** conns = calloc((size_t)n, sizeof *conns);
    if (conns == NULL) return 1;
    int opened = 0;
    double t0 = now_s();
    for (; opened < n; ++opened) {
        conns[opened] = PQconnectdb(conninfo);
        if (PQstatus(conns[opened]) != CONNECTION_OK) {
            fprintf(stderr, "pgclient: connection %d failed: %s", opened + 1,
                    PQerrorMessage(conns[opened]));
            PQfinish(conns[opened]);
            break;
        }
        if ((opened + 1) % 100 == 0 && opened + 1 < n) {
            printf("progress %d\n", opened + 1); /* lets the driver tell slow from stuck */
            fflush(stdout);
        }
    }
    printf("connected %d %.1f\n", opened, now_s() - t0);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) { /* driver gone: just close */
    }
    int queried = 0;
    int reported = 0;
    for (int i = 0; i < opened; ++i) {
        PGresult* r = PQexec(conns[i], "SELECT 1");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            ++queried;
        } else if (!reported++) {
            fprintf(stderr, "pgclient: query on connection %d failed: %s", i + 1,
                    PQerrorMessage(conns[i]));
        }
        PQclear(r);
        PQfinish(conns[i]);
    }
    printf("queried %d\n", queried);
    fflush(stdout);
    free(conns);
    return opened == n && queried == n ? 0 : 1;
}

static int probe(const char* conninfo, double timeout) {
    double deadline = now_s() + timeout;
    while (now_s() < deadline) {
        double t0 = now_s();
        PGconn* conn = connect_bounded(conninfo, 0.3);
        if (conn != NULL) {
            int ok = exec_bounded(conn, "INSERT INTO bench_failover VALUES (now())", 1.0);
            double t = now_s();
            PQfinish(conn);
            if (ok) {
                printf("%.6f\n", t);
                fflush(stdout);
                return 0;
            }
        }
        double spent = now_s() - t0;
        if (spent < 0.02) {
            struct timespec ts = {0, (long)((0.02 - spent) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    printf("timeout\n");
    return 1;
}

int main(int argc, char** argv) {
    if (argc == 4 && strcmp(argv[1], "idle") == 0) return idle(atoi(argv[2]), argv[3]);
    if (argc == 4 && strcmp(argv[1], "probe") == 0) return probe(argv[2], atof(argv[3]));
    fprintf(stderr,
            "usage: pgclient idle N CONNINFO\n"
            "       pgclient probe CONNINFO TIMEOUT_S\n");
    return 2;
}
