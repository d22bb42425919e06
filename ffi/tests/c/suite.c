/* ringport's C ABI, exercised from C: run by ffi/tests/c_suite.rs (compiled with the system C
 * compiler, -std=c11 -Wall -Wextra -Werror, under AddressSanitizer and UBSan). Each test forks
 * where it needs a second process; any failure prints where and why and exits 1. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ringport.h"

static const char *test_name = "";

#define FAIL(...)                                                                    \
    do {                                                                             \
        fprintf(stderr, "%s: %s:%d: ", test_name, __FILE__, __LINE__);              \
        fprintf(stderr, __VA_ARGS__);                                                \
        fprintf(stderr, "\n");                                                       \
        exit(1);                                                                     \
    } while (0)

/* A call that must return `want`. */
#define EXPECT(call, want)                                                           \
    do {                                                                             \
        RpStatus got_ = (call);                                                      \
        if (got_ != (want))                                                          \
            FAIL("%s gave %s, not %s (%s)", #call, rp_status_name(got_),             \
                 rp_status_name(want), rp_last_error());                             \
    } while (0)

#define OK(call) EXPECT(call, RP_STATUS_OK)

#define ASSERT(cond)                                                                 \
    do {                                                                             \
        if (!(cond))                                                                 \
            FAIL("%s", #cond);                                                       \
    } while (0)

/* A name no other run uses (the test's pid and a counter). */
static const char *unique_name(const char *what) {
    static char names[16][96];
    static int next = 0;
    char *name = names[next++ % 16];
    snprintf(name, sizeof names[0], "ringport-ctest-%d-%s-%d", (int)getpid(), what, next);
    return name;
}

/* The payload of frame `i`: its length varies, its bytes follow from i. */
static size_t frame_len(uint64_t i) { return 1 + (size_t)((i * 2654435761u) % 1500); }

static void fill_frame(uint8_t *dst, uint64_t i, size_t len) {
    for (size_t k = 0; k < len; k++)
        dst[k] = (uint8_t)(i * 31 + k * 7);
}

static int bytes_ok(const uint8_t *src, uint64_t i, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (src[k] != (uint8_t)(i * 31 + k * 7))
            return 0;
    return 1;
}

static int frame_ok(const uint8_t *src, uint64_t i, size_t len) {
    return len == frame_len(i) && bytes_ok(src, i, len);
}

/* A pipe for "the parent is ready": every two-process test forks before its first ringport
 * call, so that no child inherits ringport's threads' state half made. */
typedef struct {
    int fds[2];
} Ready;

static Ready ready_pipe(void) {
    Ready r;
    if (pipe(r.fds) != 0)
        FAIL("pipe");
    return r;
}

static void signal_ready(Ready *r) {
    close(r->fds[0]);
    if (write(r->fds[1], "r", 1) != 1)
        FAIL("write");
    close(r->fds[1]);
}

static void await_ready(Ready *r) {
    char byte;
    close(r->fds[1]);
    if (read(r->fds[0], &byte, 1) != 1)
        FAIL("the parent did not get ready");
    close(r->fds[0]);
}

static int wait_child(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        FAIL("waitpid");
    return status;
}

/* Null, freed, made-up and mistyped handles are errors, never a use of freed memory. */
static void handles_are_checked(void) {
    test_name = "handles_are_checked";
    RpProducer none = {0};
    uint8_t *data = NULL;
    EXPECT(rp_producer_try_reserve(none, 8, &data), RP_STATUS_INVALID_HANDLE);
    ASSERT(strstr(rp_last_error(), "not a live SPSC producer handle") != NULL);

    RpProducer producer;
    RpConsumer consumer;
    int fd = -1;
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 16;
    OK(rp_spsc_create_producer_memfd(&options, &producer, &fd));
    OK(rp_spsc_open_consumer_fd(fd, &options, &consumer));
    close(fd);

    /* A producer's handle is not a consumer's. */
    RpConsumer mistyped = {producer.id};
    const uint8_t *frame = NULL;
    size_t len = 0;
    EXPECT(rp_consumer_try_recv(mistyped, &frame, &len), RP_STATUS_INVALID_HANDLE);
    RpProducer made_up = {0x123456789abcdefull};
    EXPECT(rp_producer_try_send(made_up, (const uint8_t *)"x", 1), RP_STATUS_INVALID_HANDLE);

    /* Null out-pointers and buffers. */
    EXPECT(rp_producer_try_reserve(producer, 8, NULL), RP_STATUS_INVALID_ARGUMENT);
    EXPECT(rp_producer_try_send(producer, NULL, 8), RP_STATUS_INVALID_ARGUMENT);
    EXPECT(rp_spsc_create_producer(NULL, NULL, &producer), RP_STATUS_INVALID_ARGUMENT);

    OK(rp_consumer_free(consumer));
    OK(rp_producer_free(producer));
    /* Freed: every later use is refused, a second free too. */
    EXPECT(rp_producer_try_send(producer, (const uint8_t *)"x", 1), RP_STATUS_INVALID_HANDLE);
    EXPECT(rp_producer_free(producer), RP_STATUS_INVALID_HANDLE);
    EXPECT(rp_consumer_free(consumer), RP_STATUS_INVALID_HANDLE);
    ASSERT(strcmp(rp_status_name(RP_STATUS_FULL), "RP_STATUS_FULL") == 0);
    ASSERT(strcmp(rp_status_name(12345), "RP_STATUS_UNKNOWN") == 0);
}

/* Counts the frames of a batch and the damaged ones: context is int[2], {seen, bad}. */
static void on_batch_frame(void *context, const uint8_t *data, size_t len) {
    int *tally = context;
    if (len != 32 || !bytes_ok(data, (uint64_t)tally[0], len))
        tally[1]++;
    tally[0]++;
}

/* In place and copied, grants and their rules, batches, empty and timeouts, in one process. */
static void frames_in_one_process(void) {
    test_name = "frames_in_one_process";
    RpProducer producer;
    RpConsumer consumer;
    int fd = -1;
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 16;
    OK(rp_spsc_create_producer_memfd(&options, &producer, &fd));
    OK(rp_spsc_open_consumer_fd(fd, &options, &consumer));
    close(fd);

    const uint8_t *frame = NULL;
    size_t len = 0;
    EXPECT(rp_consumer_try_recv(consumer, &frame, &len), RP_STATUS_EMPTY);
    EXPECT(rp_consumer_recv_timeout(consumer, 1000000, &frame, &len), RP_STATUS_TIMEOUT);

    /* Reserve, write in place, commit a prefix. */
    uint8_t *room = NULL;
    OK(rp_producer_try_reserve(producer, 64, &room));
    EXPECT(rp_producer_try_reserve(producer, 8, &room), RP_STATUS_GRANT_OUTSTANDING);
    EXPECT(rp_producer_try_send(producer, (const uint8_t *)"x", 1), RP_STATUS_GRANT_OUTSTANDING);
    memcpy(room, "hello", 5);
    EXPECT(rp_producer_commit(producer, 65), RP_STATUS_INVALID_LENGTH);
    OK(rp_producer_commit(producer, 5));
    EXPECT(rp_producer_commit(producer, 5), RP_STATUS_NO_GRANT);

    /* An aborted reservation is never seen. */
    OK(rp_producer_reserve(producer, 16, &room));
    OK(rp_producer_abort(producer));
    OK(rp_producer_send(producer, (const uint8_t *)"world!", 6));

    OK(rp_consumer_try_recv(consumer, &frame, &len));
    ASSERT(len == 5 && memcmp(frame, "hello", 5) == 0);
    EXPECT(rp_consumer_try_recv(consumer, &frame, &len), RP_STATUS_GRANT_OUTSTANDING);
    OK(rp_consumer_release(consumer));
    EXPECT(rp_consumer_release(consumer), RP_STATUS_NO_GRANT);

    /* A buffer too small keeps the frame for the next copying receive. */
    uint8_t small[2], big[64];
    EXPECT(rp_consumer_try_recv_into(consumer, small, sizeof small, &len), RP_STATUS_BUFFER_TOO_SMALL);
    ASSERT(len == 6);
    OK(rp_consumer_try_recv_into(consumer, big, sizeof big, &len));
    ASSERT(len == 6 && memcmp(big, "world!", 6) == 0);

    /* Too long for the ring. */
    size_t capacity = 0, max_frame = 0;
    OK(rp_producer_sizes(producer, &capacity, &max_frame));
    ASSERT(capacity == 1 << 16 && max_frame > 0 && max_frame <= capacity);
    EXPECT(rp_producer_try_reserve(producer, max_frame + 1, &room), RP_STATUS_INVALID_LENGTH);

    /* Batches: as many as fit, published together, and received together. */
    uint8_t payloads[100][32];
    RpBuffer frames[100];
    for (int i = 0; i < 100; i++) {
        fill_frame(payloads[i], (uint64_t)i, 32);
        frames[i].data = payloads[i];
        frames[i].len = 32;
    }
    size_t sent = 0;
    OK(rp_producer_try_send_many(producer, frames, 100, &sent));
    ASSERT(sent == 100);
    int tally[2] = {0, 0};
    size_t count = 0;
    OK(rp_consumer_try_recv_many(consumer, 1000, on_batch_frame, tally, &count));
    if (count != 100 || tally[0] != 100 || tally[1] != 0)
        FAIL("batch: %zu received, %d seen, %d damaged", count, tally[0], tally[1]);

    RpWaitStats stats;
    OK(rp_consumer_stats(consumer, &stats));
    RpPeerStatus peer;
    OK(rp_consumer_peer_status(consumer, &peer));
    ASSERT(peer == RP_PEER_STATUS_PRESENT);

    OK(rp_producer_free(producer));
    /* Everything committed is delivered, then the producer is gone. */
    EXPECT(rp_consumer_recv(consumer, &frame, &len), RP_STATUS_PEER_GONE);
    OK(rp_consumer_peer_status(consumer, &peer));
    ASSERT(peer == RP_PEER_STATUS_GONE);
    OK(rp_consumer_free(consumer));
}

/* `try_next`: the release and the receive in one call, for SPSC and MPMC. */
static void next_releases_and_receives(void) {
    test_name = "next_releases_and_receives";
    RpProducer producer;
    RpConsumer consumer;
    int fd = -1;
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 4096;
    OK(rp_spsc_create_producer_memfd(&options, &producer, &fd));
    OK(rp_spsc_open_consumer_fd(fd, &options, &consumer));
    close(fd);

    const uint8_t *frame = NULL;
    size_t len = 0;
    EXPECT(rp_consumer_try_next(consumer, &frame, &len), RP_STATUS_EMPTY);
    EXPECT(rp_consumer_next_timeout(consumer, 1000000, &frame, &len), RP_STATUS_TIMEOUT);

    /* Each call hands the last frame back: 1,000 frames of 512 bytes pass through a ring of
     * 4 KiB, which would be full after seven if they were not. */
    uint8_t payload[512];
    for (uint64_t i = 0; i < 1000; i++) {
        fill_frame(payload, i, sizeof payload);
        OK(rp_producer_try_send(producer, payload, sizeof payload));
        OK(rp_consumer_try_next(consumer, &frame, &len));
        ASSERT(len == sizeof payload && bytes_ok(frame, i, len));
        /* Borrowed until the next call. */
        EXPECT(rp_consumer_try_recv(consumer, &frame, &len), RP_STATUS_GRANT_OUTSTANDING);
    }
    /* Released whatever the outcome: empty, and nothing borrowed. */
    EXPECT(rp_consumer_try_next(consumer, &frame, &len), RP_STATUS_EMPTY);
    EXPECT(rp_consumer_release(consumer), RP_STATUS_NO_GRANT);

    /* A frame kept by a copying receive (its buffer too small) is the next frame, borrowed. */
    OK(rp_producer_send(producer, (const uint8_t *)"kept for later", 14));
    OK(rp_producer_send(producer, (const uint8_t *)"then this", 9));
    uint8_t small[4];
    EXPECT(rp_consumer_try_recv_into(consumer, small, sizeof small, &len), RP_STATUS_BUFFER_TOO_SMALL);
    OK(rp_consumer_try_next(consumer, &frame, &len));
    ASSERT(len == 14 && memcmp(frame, "kept for later", 14) == 0);
    OK(rp_consumer_next(consumer, &frame, &len));
    ASSERT(len == 9 && memcmp(frame, "then this", 9) == 0);

    OK(rp_producer_free(producer));
    EXPECT(rp_consumer_next(consumer, &frame, &len), RP_STATUS_PEER_GONE);
    EXPECT(rp_consumer_release(consumer), RP_STATUS_NO_GRANT);
    OK(rp_consumer_free(consumer));

    /* MPMC: 1,000 messages through 4 slots. */
    const char *name = unique_name("next");
    RpMpmcOptions mpmc = rp_mpmc_options_default();
    mpmc.slots = 4;
    mpmc.slot_size = 64;
    RpMpmcRing ring;
    OK(rp_mpmc_create(name, &mpmc, &ring));
    RpMpmcProducer sender;
    RpMpmcConsumer receiver;
    OK(rp_mpmc_producer_new(ring, &sender));
    OK(rp_mpmc_consumer_new(ring, &receiver));
    EXPECT(rp_mpmc_try_next(receiver, &frame, &len), RP_STATUS_EMPTY);
    for (uint64_t i = 0; i < 1000; i++) {
        OK(rp_mpmc_try_send(sender, (const uint8_t *)&i, sizeof i));
        OK(rp_mpmc_try_next(receiver, &frame, &len));
        uint64_t value;
        ASSERT(len == sizeof value);
        memcpy(&value, frame, sizeof value);
        ASSERT(value == i);
    }
    EXPECT(rp_mpmc_next_timeout(receiver, 1000000, &frame, &len), RP_STATUS_TIMEOUT);
    EXPECT(rp_mpmc_release(receiver), RP_STATUS_NO_GRANT);
    OK(rp_mpmc_producer_free(sender));
    OK(rp_mpmc_consumer_free(receiver));
    OK(rp_mpmc_free(ring));
}

/* A named ring between two processes: 200,000 frames of varying lengths, each checked. */
static void stream_between_processes(void) {
    test_name = "stream_between_processes";
    const char *name = unique_name("stream");
    const uint64_t frames = 200000;
    Ready ready = ready_pipe();
    pid_t child = fork();
    if (child == 0) {
        await_ready(&ready);
        RpConsumer consumer;
        OK(rp_spsc_open_consumer(name, NULL, &consumer));
        for (uint64_t i = 0; i < frames; i++) {
            const uint8_t *frame;
            size_t len;
            OK(rp_consumer_recv(consumer, &frame, &len));
            if (!frame_ok(frame, i, len))
                FAIL("frame %llu damaged (%zu bytes)", (unsigned long long)i, len);
            OK(rp_consumer_release(consumer));
        }
        OK(rp_consumer_free(consumer)); /* and its counts are written as it goes */
        _exit(0);
    }
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 18;
    RpProducer producer;
    OK(rp_spsc_create_producer(name, &options, &producer));
    signal_ready(&ready);
    OK(rp_producer_wait_for_peer(producer, 10000000000ull));
    for (uint64_t i = 0; i < frames; i++) {
        size_t len = frame_len(i);
        uint8_t *room;
        OK(rp_producer_reserve(producer, len, &room));
        fill_frame(room, i, len);
        OK(rp_producer_commit(producer, len));
    }
    int status = wait_child(child);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The ring's counters, read from outside: everything committed was received. */
    RpRingStats stats;
    OK(rp_ring_stat(name, &stats));
    ASSERT(stats.kind == 1 && stats.capacity == 1 << 18);
    ASSERT(stats.committed_frames == frames && stats.received_frames == frames);
    ASSERT(stats.unread_frames == 0 && stats.unread_bytes == 0);
    uint64_t payload = 0;
    for (uint64_t i = 0; i < frames; i++)
        payload += frame_len(i);
    ASSERT(stats.committed_bytes == (int64_t)payload && stats.received_bytes == (int64_t)payload);
    OK(rp_producer_free(producer)); /* the creator's free removes the name */
    RpConsumer gone;
    EXPECT(rp_spsc_open_consumer(name, NULL, &gone), RP_STATUS_NOT_FOUND);
}

/* kill -9 of the producer mid-stream: the consumer gets every frame committed, intact, then
 * RP_STATUS_PEER_GONE, and never hangs. */
static void producer_killed(void) {
    test_name = "producer_killed";
    const char *name = unique_name("killed");
    Ready ready = ready_pipe();
    pid_t child = fork();
    if (child == 0) {
        await_ready(&ready);
        RpProducer producer;
        OK(rp_spsc_open_producer(name, NULL, &producer));
        for (uint64_t i = 0;; i++) {
            size_t len = frame_len(i);
            uint8_t *room;
            OK(rp_producer_reserve(producer, len, &room));
            fill_frame(room, i, len);
            if (i == 5000) /* killed holding a reservation, after 5,000 commits */
                kill(getpid(), SIGKILL);
            OK(rp_producer_commit(producer, len));
        }
    }
    RpSpscOptions options = rp_spsc_options_default();
    options.capacity = 1 << 16;
    RpConsumer consumer;
    OK(rp_spsc_create_consumer(name, &options, &consumer));
    signal_ready(&ready);
    uint64_t received = 0;
    for (;;) {
        const uint8_t *frame;
        size_t len;
        RpStatus status = rp_consumer_recv_timeout(consumer, 10000000000ull, &frame, &len);
        if (status == RP_STATUS_PEER_GONE)
            break;
        if (status != RP_STATUS_OK)
            FAIL("recv gave %s (%s)", rp_status_name(status), rp_last_error());
        if (!frame_ok(frame, received, len))
            FAIL("frame %llu damaged", (unsigned long long)received);
        OK(rp_consumer_release(consumer));
        received++;
    }
    int status = wait_child(child);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (received != 5000)
        FAIL("%llu frames received, 5000 committed", (unsigned long long)received);
    OK(rp_consumer_free(consumer));
}

/* MPMC: a named ring, a producer and consumer in each of two processes. */
static void mpmc_between_processes(void) {
    test_name = "mpmc_between_processes";
    const char *name = unique_name("mpmc");
    RpMpmcOptions options = rp_mpmc_options_default();
    options.slots = 64;
    options.slot_size = 128;
    Ready ready = ready_pipe();
    pid_t child = fork();
    if (child == 0) {
        await_ready(&ready);
        RpMpmcRing opened;
        OK(rp_mpmc_open(name, NULL, &opened));
        RpMpmcProducer producer;
        OK(rp_mpmc_producer_new(opened, &producer));
        for (uint64_t i = 0; i < 10000; i++) {
            uint8_t *slot;
            OK(rp_mpmc_reserve(producer, 8, &slot));
            memcpy(slot, &i, 8);
            OK(rp_mpmc_commit(producer, 8));
        }
        OK(rp_mpmc_producer_free(producer));
        OK(rp_mpmc_free(opened));
        _exit(0);
    }
    RpMpmcRing ring;
    OK(rp_mpmc_create(name, &options, &ring));
    signal_ready(&ready);
    RpMpmcConsumer consumer;
    OK(rp_mpmc_consumer_new(ring, &consumer));
    uint64_t sum = 0;
    for (uint64_t i = 0; i < 10000; i++) {
        uint8_t buf[128];
        size_t len;
        OK(rp_mpmc_recv_into(consumer, buf, sizeof buf, &len));
        ASSERT(len == 8);
        uint64_t value;
        memcpy(&value, buf, 8);
        sum += value;
    }
    ASSERT(sum == 10000ull * 9999ull / 2);
    const uint8_t *data;
    size_t len;
    EXPECT(rp_mpmc_try_recv(consumer, &data, &len), RP_STATUS_EMPTY);
    int status = wait_child(child);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(rp_mpmc_consumer_free(consumer));
    OK(rp_mpmc_free(ring));
}

/* A Channel: a server in this process, a client that echoes in another. */
static void channel_echo(void) {
    test_name = "channel_echo";
    char path[128];
    snprintf(path, sizeof path, "@%s", unique_name("channel"));
    Ready ready = ready_pipe();
    pid_t child = fork();
    if (child == 0) {
        await_ready(&ready);
        RpChannel channel;
        OK(rp_channel_connect(path, &channel));
        for (;;) {
            const uint8_t *data;
            size_t len;
            RpStatus status = rp_channel_recv(channel, &data, &len);
            if (status == RP_STATUS_PEER_GONE)
                break;
            OK(status);
            OK(rp_channel_send(channel, data, len));
        }
        OK(rp_channel_free(channel));
        _exit(0);
    }
    RpListener listener;
    OK(rp_listener_bind(path, &listener));
    signal_ready(&ready);
    RpChannel channel;
    OK(rp_listener_accept_timeout(listener, 10000000000ull, &channel));
    static uint8_t message[300000];
    for (int round = 0; round < 200; round++) {
        size_t len = round == 199 ? sizeof message : frame_len((uint64_t)round);
        fill_frame(message, (uint64_t)round, len);
        OK(rp_channel_send(channel, message, len));
        const uint8_t *echo;
        size_t echo_len;
        OK(rp_channel_recv_timeout(channel, 10000000000ull, &echo, &echo_len));
        ASSERT(echo_len == len && memcmp(echo, message, len) == 0);
    }
    OK(rp_channel_free(channel));
    int status = wait_child(child);
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(rp_listener_free(listener));
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"handles_are_checked", handles_are_checked},
        {"frames_in_one_process", frames_in_one_process},
        {"next_releases_and_receives", next_releases_and_receives},
        {"stream_between_processes", stream_between_processes},
        {"producer_killed", producer_killed},
        {"mpmc_between_processes", mpmc_between_processes},
        {"channel_echo", channel_echo},
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        /* Each test in a process of its own, which has made no ringport call before it. */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            tests[i].run();
            exit(0);
        }
        int status = wait_child(pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAILED %s\n", tests[i].name);
            return 1;
        }
        printf("ok %s\n", tests[i].name);
        ran++;
    }
    if (ran == 0)
        FAIL("no test named %s", only ? only : "");
    return 0;
}
