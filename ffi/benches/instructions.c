/* The C side of ffi/benches/instructions.rs: one pattern of calls on an SPSC ring in one
 * process, N times, for callgrind to count. Usage: instructions PATTERN N, where PATTERN is
 * grant (try_reserve, commit, try_recv, release), copy (try_send, try_next), abort
 * (try_reserve, commit of 0) or empty (try_recv on an empty ring). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringport.h"

static void check(RpStatus s, RpStatus want, const char *what) {
    if (s != want) {
        fprintf(stderr, "%s: %s: %s\n", what, rp_status_name(s), rp_last_error());
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    const char *pattern = argv[1];
    long n = atol(argv[2]);
    int fd = -1;
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 16;
    RpProducer p;
    RpConsumer c;
    check(rp_spsc_create_producer_memfd(&options, &p, &fd), RP_STATUS_OK, "create");
    check(rp_spsc_open_consumer_fd(fd, &options, &c), RP_STATUS_OK, "open");
    close(fd);
    uint8_t message[64];
    memset(message, 0x5a, sizeof message);
    const uint8_t *data;
    size_t len;
    uint8_t *room;
    /* Decided once: a string compare a turn would be counted with the calls. */
    int which = strcmp(pattern, "grant") == 0   ? 0
                : strcmp(pattern, "copy") == 0  ? 1
                : strcmp(pattern, "abort") == 0 ? 2
                                                : 3;
    for (long i = 0; i < n; i++) {
        if (which == 0) {
            check(rp_producer_try_reserve(p, 64, &room), RP_STATUS_OK, "try_reserve");
            check(rp_producer_commit(p, 64), RP_STATUS_OK, "commit");
            check(rp_consumer_try_recv(c, &data, &len), RP_STATUS_OK, "try_recv");
            check(rp_consumer_release(c), RP_STATUS_OK, "release");
        } else if (which == 1) {
            check(rp_producer_try_send(p, message, 64), RP_STATUS_OK, "try_send");
            check(rp_consumer_try_next(c, &data, &len), RP_STATUS_OK, "try_next");
        } else if (which == 2) {
            check(rp_producer_try_reserve(p, 64, &room), RP_STATUS_OK, "try_reserve");
            check(rp_producer_commit(p, 0), RP_STATUS_OK, "commit");
        } else {
            check(rp_consumer_try_recv(c, &data, &len), RP_STATUS_EMPTY, "try_recv");
        }
    }
    rp_producer_free(p);
    rp_consumer_free(c);
    return 0;
}
