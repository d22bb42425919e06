/* The C side of ffi/benches/ping_pong.rs: a busy 64 B ping-pong between two processes over two
 * named SPSC rings, through the C ABI, in one of two forms: "grant" (try_reserve / commit,
 * try_recv / release: four calls a message) or "copy" (try_send from a buffer, try_next: the
 * release and the receive in one call; two calls a message). Prints the nanoseconds per round
 * trip. Usage: ping_pong ROUND_TRIPS grant|copy */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringport.h"

static void check(RpStatus s, const char *what) {
    if (s != RP_STATUS_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, rp_status_name(s), rp_last_error());
        exit(1);
    }
}

static void pin(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Sends a 64-byte message whose first 8 bytes are `seq`. */
static inline void send64(RpProducer p, uint64_t seq) {
    uint8_t *room;
    RpStatus s;
    while ((s = rp_producer_try_reserve(p, 64, &room)) == RP_STATUS_FULL) {
    }
    check(s, "try_reserve");
    memset(room, 0x5a, 64);
    memcpy(room, &seq, 8);
    check(rp_producer_commit(p, 64), "commit");
}

/* The same through the copying send. */
static inline void send64_copy(RpProducer p, uint64_t seq) {
    uint8_t message[64];
    memset(message, 0x5a, 64);
    memcpy(message, &seq, 8);
    RpStatus s;
    while ((s = rp_producer_try_send(p, message, 64)) == RP_STATUS_FULL) {
    }
    check(s, "try_send");
}

/* Releases the last frame and borrows the next, reads it, returns its sequence number. */
static inline uint64_t next64(RpConsumer c) {
    const uint8_t *data;
    size_t len;
    RpStatus s;
    while ((s = rp_consumer_try_next(c, &data, &len)) == RP_STATUS_EMPTY) {
    }
    check(s, "try_next");
    uint64_t seq;
    memcpy(&seq, data, 8);
    return seq;
}

/* Receives one, reads it, returns its sequence number. */
static inline uint64_t recv64(RpConsumer c) {
    const uint8_t *data;
    size_t len;
    RpStatus s;
    while ((s = rp_consumer_try_recv(c, &data, &len)) == RP_STATUS_EMPTY) {
    }
    check(s, "try_recv");
    uint64_t seq;
    memcpy(&seq, data, 8);
    check(rp_consumer_release(c), "release");
    return seq;
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
    int copy = argc > 2 && strcmp(argv[2], "copy") == 0;
    char ping[64], pong[64];
    snprintf(ping, sizeof ping, "ringport-bench-c-%d-ping", (int)getpid());
    snprintf(pong, sizeof pong, "ringport-bench-c-%d-pong", (int)getpid());
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t child = fork(); /* before either process makes a ringport call */
    if (child == 0) {
        pin(1);
        char byte;
        close(ready[1]);
        if (read(ready[0], &byte, 1) != 1)
            return 1;
        RpConsumer in;
        RpProducer out;
        check(rp_spsc_open_consumer(ping, NULL, &in), "open ping");
        check(rp_spsc_open_producer(pong, NULL, &out), "open pong");
        for (uint64_t i = 0; i <= n; i++) {
            if (copy)
                send64_copy(out, next64(in));
            else
                send64(out, recv64(in));
        }
        rp_consumer_free(in);
        rp_producer_free(out);
        return 0;
    }
    pin(0);
    close(ready[0]);
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 16;
    RpProducer out;
    RpConsumer in;
    check(rp_spsc_create_producer(ping, &options, &out), "create ping");
    check(rp_spsc_create_consumer(pong, &options, &in), "create pong");
    if (write(ready[1], "r", 1) != 1)
        return 1;
    /* One round trip to warm up (and wait for the child), then the timed ones. */
    if (copy) {
        send64_copy(out, 0);
        next64(in);
    } else {
        send64(out, 0);
        recv64(in);
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t echo;
        if (copy) {
            send64_copy(out, i);
            echo = next64(in);
        } else {
            send64(out, i);
            echo = recv64(in);
        }
        if (echo != i) {
            fprintf(stderr, "echo out of order\n");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("%.2f\n", ns / (double)n);
    rp_producer_free(out);
    rp_consumer_free(in);
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
