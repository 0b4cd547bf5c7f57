/*
 * A reference program, not built by build.rs: runs one leak-classification
 * scenario with the same C fixtures the leakcheck tests use, then exits, so
 * that valgrind memcheck's verdict at exit can be compared with what
 * leakcheck is expected to say for the same scenario
 * (harness/tests/verdict_classification.rs). valgrind_agreement.sh builds it and
 * runs every scenario under valgrind.
 *
 *     gcc -g -O0 -pthread -o driver valgrind_driver.c fixtures.c
 *     valgrind --leak-check=full --show-leak-kinds=all ./driver list
 *
 * What leakcheck does around a test, the driver does around a scenario: the
 * "setup" (what a test does before its check) runs first, then the
 * scenario's "body" runs in a function of its own. Unless the scenario is
 * about stale stack, the dead stack the body left is then overwritten
 * (leakcheck never scans the body's stack, which is gone by the verdict;
 * memcheck scans the live part of every stack and, on amd64, 128 bytes of
 * red zone below the stack pointer). Nothing is printed before exit: stdio
 * would allocate its buffer.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* From fixtures.c. */
void *fixture_cache_get(size_t size);
long fixture_table_lookup(size_t i);
int fixture_interior_global(size_t size);
void *fixture_list_new(size_t n, size_t node_size);
void *fixture_ring_new(size_t n, size_t node_size);
void *fixture_pair_behind(const char *order, size_t a_size, size_t node_size);
void fixture_stale_stack(size_t size);
void **fixture_slots_new(size_t n);
int fixture_store(void **slots, size_t index, size_t size);
void *fixture_keeper_start(void);
int fixture_keeper_give(void *keeper, size_t size);

enum { NODE_BYTES = 32 }; /* LIST_NODE_BYTES */

/* What setup made, kept in globals as a test's earlier state would be. */
static void **slots;
static void *keeper;

__attribute__((noinline)) static void scrub_stack(void) {
    volatile char dead[64 * 1024];
    memset((char *)dead, 0, sizeof dead);
}

__attribute__((noinline)) static void body_cache(void) { (void)fixture_cache_get(64); }

__attribute__((noinline)) static void body_table(void) {
    (void)fixture_table_lookup(3);
    (void)fixture_table_lookup(4);
}

__attribute__((noinline)) static void body_list(void) { (void)fixture_list_new(5, NODE_BYTES); }

__attribute__((noinline)) static void body_interior(void) { (void)fixture_interior_global(32); }

__attribute__((noinline)) static void body_stale_stack(void) { fixture_stale_stack(48); }

__attribute__((noinline)) static void body_cycle(void) { (void)fixture_ring_new(2, NODE_BYTES); }

__attribute__((noinline)) static void body_ring4(void) { (void)fixture_ring_new(4, NODE_BYTES); }

/* A of 48 bytes, B and C of 32 (PAIR_A_BYTES, LIST_NODE_BYTES). */
__attribute__((noinline)) static void body_pair_abc(void) { (void)fixture_pair_behind("ABC", 48, NODE_BYTES); }

__attribute__((noinline)) static void body_pair_bca(void) { (void)fixture_pair_behind("BCA", 48, NODE_BYTES); }

__attribute__((noinline)) static void body_pair_cba(void) { (void)fixture_pair_behind("CBA", 48, NODE_BYTES); }

__attribute__((noinline)) static void body_older_block(void) { (void)fixture_store(slots, 1, 40); }

__attribute__((noinline)) static void body_live_thread(void) { (void)fixture_keeper_give(keeper, 40); }

static void *on_thread(void *body) {
    ((void (*)(void))body)();
    return NULL;
}

/* Runs body on a thread of its own and joins it, as leakcheck runs a check. */
static int run_on_thread(void (*body)(void)) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, on_thread, (void *)body) != 0)
        return -1;
    return pthread_join(thread, NULL);
}

struct scenario {
    const char *name;
    void (*setup)(void);
    void (*body)(void);
    int scrub;  /* overwrite the dead stack the body left */
    int thread; /* run the body on a joined thread */
};

static void setup_older_block(void) { slots = fixture_slots_new(2); }
static void setup_live_thread(void) { keeper = fixture_keeper_start(); }

static const struct scenario scenarios[] = {
    {"cache", NULL, body_cache, 1, 0},
    {"table", NULL, body_table, 1, 0},
    {"list", NULL, body_list, 1, 0},
    {"interior", NULL, body_interior, 1, 0},
    {"stale_stack", NULL, body_stale_stack, 0, 0},
    {"stale_stack_thread", NULL, body_stale_stack, 0, 1},
    {"cycle", NULL, body_cycle, 1, 0},
    {"ring4", NULL, body_ring4, 1, 0},
    {"pair_abc", NULL, body_pair_abc, 1, 0},
    {"pair_bca", NULL, body_pair_bca, 1, 0},
    {"pair_cba", NULL, body_pair_cba, 1, 0},
    {"older_block", setup_older_block, body_older_block, 1, 0},
    {"live_thread", setup_live_thread, body_live_thread, 1, 0},
};

int main(int argc, char **argv) {
    for (size_t i = 0; argc == 2 && i < sizeof scenarios / sizeof scenarios[0]; i++) {
        const struct scenario *s = &scenarios[i];
        if (strcmp(argv[1], s->name) != 0)
            continue;
        if (s->setup != NULL)
            s->setup();
        if (s->thread) {
            if (run_on_thread(s->body) != 0)
                return 2;
        } else {
            s->body();
        }
        if (s->scrub)
            scrub_stack();
        return 0;
    }
    static const char usage[] = "usage: driver cache|table|list|interior|stale_stack|"
                                "stale_stack_thread|cycle|ring4|pair_abc|pair_bca|pair_cba|"
                                "older_block|live_thread\n";
    (void)!write(2, usage, sizeof usage - 1);
    return 2;
}
