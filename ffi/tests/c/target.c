/* A fuzzing target in C: answers each case with its length (4 bytes), marks the coverage map,
 * and aborts on cases that start with "crash". Driven by ffi/tests/c_suite.rs. */
#include <stdio.h>
#include <string.h>

#include "ringport.h"

static void check(RpStatus status, const char *what) {
    if (status != RP_STATUS_OK) {
        fprintf(stderr, "target: %s: %s: %s\n", what, rp_status_name(status), rp_last_error());
        exit(1);
    }
}

int main(void) {
    RpTarget target;
    check(rp_target_from_env(&target), "rp_target_from_env");
    uint8_t *map;
    size_t map_len;
    check(rp_target_coverage(target, &map, &map_len), "rp_target_coverage");
    for (;;) {
        const uint8_t *data;
        size_t len;
        uint64_t id;
        RpStatus status = rp_target_next_case(target, &data, &len, &id);
        if (status == RP_STATUS_PEER_GONE)
            break;
        check(status, "rp_target_next_case");
        if (len >= 5 && memcmp(data, "crash", 5) == 0)
            abort();
        if (map != NULL && map_len > 0)
            map[len % map_len] = 1;
        uint32_t answer = (uint32_t)len;
        uint8_t result[4];
        memcpy(result, &answer, 4);
        check(rp_target_finish(target, result, sizeof result), "rp_target_finish");
    }
    check(rp_target_free(target), "rp_target_free");
    return 0;
}
