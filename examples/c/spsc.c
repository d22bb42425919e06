/* ringport from C: a producer writes frames in place into a named ring, a consumer in another
 * process reads them in place. Build and run (from the repository's root):
 *
 *   cargo build --release -p ringport-ffi
 *   cc -std=c11 -Wall -Iinclude examples/c/spsc.c target/release/libringport_c.a \
 *      -lpthread -ldl -lm -o /tmp/spsc && /tmp/spsc
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ringport.h"

static int check(RpStatus status, const char *what) {
    if (status != RP_STATUS_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, rp_status_name(status), rp_last_error());
        exit(1);
    }
    return 0;
}

int main(void) {
    char name[64];
    snprintf(name, sizeof name, "ringport-example-c-%d", (int)getpid());
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    /* The consumer's process, forked before either makes a ringport call. */
    pid_t child = fork();
    if (child == 0) {
        char byte;
        close(ready[1]);
        if (read(ready[0], &byte, 1) != 1)
            return 1;
        RpConsumer consumer;
        check(rp_spsc_open_consumer(name, NULL, &consumer), "open");
        unsigned long frames = 0, bytes = 0;
        for (;;) {
            const uint8_t *frame;
            size_t len;
            RpStatus status = rp_consumer_recv(consumer, &frame, &len);
            if (status == RP_STATUS_PEER_GONE) /* the producer is done, and all was read */
                break;
            check(status, "recv");
            frames++;
            bytes += len;
            check(rp_consumer_release(consumer), "release");
        }
        printf("consumer: %lu frames, %lu bytes\n", frames, bytes);
        check(rp_consumer_free(consumer), "free");
        return 0;
    }
    close(ready[0]);
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 20;
    RpProducer producer;
    check(rp_spsc_create_producer(name, &options, &producer), "create");
    if (write(ready[1], "r", 1) != 1)
        return 1;
    for (int i = 0; i < 100000; i++) {
        uint8_t *room;
        check(rp_producer_reserve(producer, 64, &room), "reserve");
        int n = snprintf((char *)room, 64, "frame %d", i);
        check(rp_producer_commit(producer, (size_t)n), "commit");
    }
    check(rp_producer_free(producer), "free"); /* and the name goes with its creator */
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
