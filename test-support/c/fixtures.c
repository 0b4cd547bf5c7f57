/*
 * C fixtures for leakcheck's own tests: known leaks, clean paths, threads,
 * globals and heap misuse, each a function named for what it does.
 *
 * Marker comments sit on the exact line of each allocating call (and of each
 * misusing free). The Rust side finds them with `line_of("name")`, so a test
 * can assert the file:line of a report's top frame without hard-coding a line
 * number. A marker is its function's name without `fixture_`, plus a suffix
 * where one function has several sites; keep each one unique.
 *
 * Built at -O0 with -fno-builtin (see build.rs) so that the compiler neither
 * elides, merges nor inlines an allocation.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Blocks meant to leak start zeroed: stale heap data left in them (old
 * free-list links, earlier contents) could otherwise point at another block
 * and blur the leak kind a test expects.
 */
static void *zeroed(void *p, size_t size) {
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

/* ---- malloc and friends: one primitive per allocator family ---- */

void fixture_leak(size_t n, size_t size) {
    for (size_t i = 0; i < n; i++) {
        void *p = zeroed(malloc(size), size); /* @leak */
        (void)p;
    }
}

void fixture_churn(size_t n, size_t size) {
    for (size_t i = 0; i < n; i++)
        free(malloc(size));
}

void *fixture_alloc(size_t size) {
    return zeroed(malloc(size), size); /* @alloc */
}

void fixture_free(void *ptr) {
    free(ptr); /* @free */
}

void *fixture_realloc(void *ptr, size_t size) {
    return realloc(ptr, size); /* @realloc */
}

void *fixture_calloc(size_t n, size_t size) {
    return calloc(n, size); /* @calloc */
}

void *fixture_posix_memalign(size_t align, size_t size) {
    void *p = NULL;
    int rc = posix_memalign(&p, align, size); /* @posix_memalign */
    return rc == 0 ? zeroed(p, size) : NULL;
}

void *fixture_aligned_alloc(size_t align, size_t size) {
    return zeroed(aligned_alloc(align, size), size); /* @aligned_alloc */
}

void *fixture_memalign(size_t align, size_t size) {
    return zeroed(memalign(align, size), size); /* @memalign */
}

void *fixture_valloc(size_t size) {
    return zeroed(valloc(size), size); /* @valloc */
}

void *fixture_pvalloc(size_t size) {
    return zeroed(pvalloc(size), size); /* @pvalloc */
}

/*
 * Grows in place, grows past the small bins (moves), shrinks, grows past the
 * mmap threshold (moves again), shrinks back; then settles at final_size.
 * The surviving block is the one the last realloc returned.
 */
void *fixture_realloc_chain(size_t steps, size_t final_size) {
    static const size_t sizes[] = {64, 4096, 24, 200000, 48};
    char *p = malloc(16); /* @realloc_chain_first */
    for (size_t i = 0; p != NULL && i < steps; i++) {
        char *q = realloc(p, sizes[i % 5]); /* @realloc_chain_step */
        if (q == NULL)
            free(p);
        p = q;
    }
    if (p == NULL)
        return NULL;
    char *q = realloc(p, final_size); /* @realloc_chain */
    if (q == NULL && final_size != 0) /* realloc(p, 0) has freed p */
        free(p);
    return zeroed(q, final_size);
}

/* ---- allocations made inside libc on our behalf ---- */

char *fixture_strdup(const char *s) {
    return strdup(s); /* @strdup */
}

char *fixture_asprintf(int value) {
    char *s = NULL;
    int rc = asprintf(&s, "value=%d", value); /* @asprintf */
    return rc < 0 ? NULL : s;
}

/* Reads the first line of text through a FILE; the line buffer is the caller's. */
char *fixture_getline(const char *text) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (f == NULL)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f); /* @getline */
    fclose(f);
    if (len < 0) {
        free(line);
        return NULL;
    }
    return line;
}

/* ---- a linked structure: leaking the head loses the rest indirectly ---- */

struct fixture_node {
    struct fixture_node *next;
};

void fixture_list_free(void *head) {
    struct fixture_node *node = head;
    while (node != NULL) {
        struct fixture_node *next = node->next;
        free(node);
        node = next;
    }
}

/* node_size >= sizeof(struct fixture_node); returns NULL when n == 0. */
void *fixture_list_new(size_t n, size_t node_size) {
    struct fixture_node *head = NULL;
    for (size_t i = 0; i < n; i++) {
        struct fixture_node *node = zeroed(malloc(node_size), node_size); /* @list_new */
        if (node == NULL) {
            fixture_list_free(head);
            return NULL;
        }
        node->next = head;
        head = node;
    }
    return head;
}

/*
 * The same nodes closed into a ring: every node is pointed to by another, so
 * none is definitely lost by counting references alone. Dropped, a ring of
 * n is 1 definitely and n - 1 indirectly lost (memcheck's semantics).
 * Returns one node of the ring, or NULL when n == 0.
 */
void *fixture_ring_new(size_t n, size_t node_size) {
    struct fixture_node *first = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
        struct fixture_node *node = zeroed(malloc(node_size), node_size); /* @ring_new */
        if (node == NULL) {
            fixture_list_free(first); /* still NULL-terminated */
            return NULL;
        }
        node->next = first;
        first = node;
        if (last == NULL)
            last = node;
    }
    if (last != NULL)
        last->next = first;
    return first;
}

/* Frees every node of a ring from fixture_ring_new, given any one of them. */
void fixture_ring_free(void *node) {
    struct fixture_node *start = node;
    if (start == NULL)
        return;
    struct fixture_node *rest = start->next;
    start->next = NULL; /* open the ring: a list from rest that ends at start */
    fixture_list_free(rest);
}

/*
 * Three zeroed nodes, A -> B and B <-> C (a doubly linked pair behind A),
 * malloc'd in `order` (a permutation of "ABC"), A of a_size bytes and B, C
 * of node_size. Returns A, the only way in: drop it and A is definitely
 * lost, B and C indirectly lost, whatever the order. NULL on failure.
 */
void *fixture_pair_behind(const char *order, size_t a_size, size_t node_size) {
    struct fixture_node *node[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        int who = order[i] - 'A';
        size_t size = who == 0 ? a_size : node_size;
        node[who] = zeroed(malloc(size), size); /* @pair_behind */
    }
    if (node[0] == NULL || node[1] == NULL || node[2] == NULL) {
        for (int i = 0; i < 3; i++)
            free(node[i]);
        return NULL;
    }
    node[0]->next = node[1];
    node[1]->next = node[2];
    node[2]->next = node[1];
    return node[0];
}

/* Frees the three nodes of fixture_pair_behind, given A. */
void fixture_pair_behind_free(void *a) {
    struct fixture_node *first = a;
    if (first == NULL)
        return;
    struct fixture_node *b = first->next, *c = b->next;
    free(c);
    free(b);
    free(first);
}

/* ---- what keeps a block reachable, or does not ---- */

/*
 * Mallocs a zeroed block and writes its address into a volatile array on
 * this frame, then returns without freeing or returning it: the only copies
 * left are in dead stack, below the stack pointer. Definitely lost; a
 * checker that scans whole stack mappings (or a cached dead thread stack)
 * sees them and calls it reachable.
 */
void fixture_stale_stack(size_t size) {
    void *volatile copies[4];
    void *p = zeroed(malloc(size), size); /* @stale_stack */
    for (size_t i = 0; i < 4; i++)
        copies[i] = p;
    p = NULL;
    (void)p;
    (void)copies;
}

/* An array of n zeroed pointer slots, to be filled by fixture_store. */
void **fixture_slots_new(size_t n) {
    return zeroed(malloc(n * sizeof(void *)), n * sizeof(void *)); /* @slots_new */
}

/*
 * Mallocs a zeroed block and stores its only pointer in slots[index]: the
 * block stays reachable for as long as the slots block does, however old
 * that is. Returns 0, or -1 if malloc failed.
 */
int fixture_store(void **slots, size_t index, size_t size) {
    void *p = zeroed(malloc(size), size); /* @store */
    if (p == NULL)
        return -1;
    slots[index] = p;
    return 0;
}

/* Frees each block stored in the n slots, then the slots themselves. */
void fixture_slots_free(void **slots, size_t n) {
    if (slots == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(slots[i]);
    free(slots);
}

/*
 * A keeper: a thread that takes blocks handed to it and holds the latest one
 * in a local, on its own stack, until it is stopped. The handover slot is
 * cleared as soon as the keeper holds the block, so once fixture_keeper_give
 * returns, the keeper thread's stack is the block's only root.
 */
struct fixture_keeper {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *slot;
    int stop;
};

static void *fixture_keeper_main(void *arg) {
    struct fixture_keeper *k = arg;
    void *volatile held[1] = {NULL};
    pthread_mutex_lock(&k->lock);
    for (;;) {
        if (k->slot != NULL) {
            free(held[0]);
            held[0] = k->slot;
            k->slot = NULL;
            pthread_cond_broadcast(&k->cond);
        }
        if (k->stop)
            break;
        pthread_cond_wait(&k->cond, &k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    free(held[0]);
    held[0] = NULL;
    return NULL;
}

/* Starts a keeper thread; NULL if it cannot. */
void *fixture_keeper_start(void) {
    struct fixture_keeper *k = zeroed(malloc(sizeof *k), sizeof *k); /* @keeper_start */
    if (k == NULL)
        return NULL;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->cond, NULL);
    if (pthread_create(&k->thread, NULL, fixture_keeper_main, k) != 0) {
        pthread_cond_destroy(&k->cond);
        pthread_mutex_destroy(&k->lock);
        free(k);
        return NULL;
    }
    return k;
}

/*
 * Mallocs a zeroed block, hands it to the keeper (which frees the block it
 * held before) and waits until the keeper holds it. Returns 0, or -1 if
 * malloc failed.
 */
int fixture_keeper_give(void *keeper, size_t size) {
    struct fixture_keeper *k = keeper;
    void *p = zeroed(malloc(size), size); /* @keeper_give */
    if (p == NULL)
        return -1;
    pthread_mutex_lock(&k->lock);
    while (k->slot != NULL) /* another giver's block is being handed over */
        pthread_cond_wait(&k->cond, &k->lock);
    k->slot = p;
    pthread_cond_broadcast(&k->cond);
    while (k->slot == p)
        pthread_cond_wait(&k->cond, &k->lock);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

/* Stops the keeper: it frees the block it holds and exits; joins it. */
void fixture_keeper_stop(void *keeper) {
    struct fixture_keeper *k = keeper;
    pthread_mutex_lock(&k->lock);
    k->stop = 1;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* ---- threads created in C ---- */

struct fixture_thread_args {
    size_t n;
    size_t size;
};

/* Returns 0 or an errno value: pthread's own, or the thread's result. */
static int run_thread(void *(*start)(void *), void *arg) {
    pthread_t thread;
    void *result = NULL;
    int rc = pthread_create(&thread, NULL, start, arg);
    if (rc != 0)
        return rc;
    rc = pthread_join(thread, &result);
    return rc != 0 ? rc : (int)(intptr_t)result;
}

static void *fixture_thread_leak_main(void *arg) {
    const struct fixture_thread_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        void *p = zeroed(malloc(a->size), a->size); /* @thread_leak_main */
        (void)p;
    }
    return NULL;
}

static void *fixture_thread_clean_main(void *arg) {
    const struct fixture_thread_args *a = arg;
    fixture_churn(a->n, a->size);
    return NULL;
}

int fixture_thread_leak(size_t n, size_t size) {
    struct fixture_thread_args args = {n, size};
    return run_thread(fixture_thread_leak_main, &args);
}

int fixture_thread_clean(size_t n, size_t size) {
    struct fixture_thread_args args = {n, size};
    return run_thread(fixture_thread_clean_main, &args);
}

/* ---- thread-local C state, freed by a pthread key destructor at thread exit ---- */

static pthread_key_t state_key;
static pthread_once_t state_key_once = PTHREAD_ONCE_INIT;
static int state_key_rc;

static void make_state_key(void) {
    state_key_rc = pthread_key_create(&state_key, free);
}

/* Replaces (and frees) this thread's previous block, if any. */
int fixture_pthread_key_state(size_t size) {
    pthread_once(&state_key_once, make_state_key);
    if (state_key_rc != 0)
        return state_key_rc;
    free(pthread_getspecific(state_key));
    void *p = zeroed(malloc(size), size); /* @pthread_key_state */
    return pthread_setspecific(state_key, p);
}

static void *fixture_thread_key_state_main(void *arg) {
    return (void *)(intptr_t)fixture_pthread_key_state(*(const size_t *)arg);
}

int fixture_thread_key_state(size_t size) {
    return run_thread(fixture_thread_key_state_main, &size);
}

/* ---- process globals: still reachable, or reachable only through an interior pointer ---- */

static pthread_mutex_t globals_lock = PTHREAD_MUTEX_INITIALIZER;
static void *cache;
static long *table;
static char *interior;

enum { TABLE_LEN = 16, INTERIOR_OFFSET = 8 };

/* size is used only by the call that allocates. */
void *fixture_cache_get(size_t size) {
    pthread_mutex_lock(&globals_lock);
    if (cache == NULL)
        cache = zeroed(malloc(size), size); /* @cache_get */
    void *p = cache;
    pthread_mutex_unlock(&globals_lock);
    return p;
}

void fixture_cache_reset(void) {
    pthread_mutex_lock(&globals_lock);
    free(cache);
    cache = NULL;
    pthread_mutex_unlock(&globals_lock);
}

/* Returns (i % TABLE_LEN) squared, or -1 if the table cannot be allocated. */
long fixture_table_lookup(size_t i) {
    pthread_mutex_lock(&globals_lock);
    if (table == NULL) {
        table = malloc(TABLE_LEN * sizeof *table); /* @table_lookup */
        for (long k = 0; table != NULL && k < TABLE_LEN; k++)
            table[k] = k * k;
    }
    long v = table != NULL ? table[i % TABLE_LEN] : -1;
    pthread_mutex_unlock(&globals_lock);
    return v;
}

void fixture_table_reset(void) {
    pthread_mutex_lock(&globals_lock);
    free(table);
    table = NULL;
    pthread_mutex_unlock(&globals_lock);
}

/* size > INTERIOR_OFFSET; replaces (and frees) the previous block, if any. */
int fixture_interior_global(size_t size) {
    char *p = zeroed(malloc(size), size); /* @interior_global */
    if (p == NULL)
        return -1;
    pthread_mutex_lock(&globals_lock);
    if (interior != NULL)
        free(interior - INTERIOR_OFFSET);
    interior = p + INTERIOR_OFFSET;
    pthread_mutex_unlock(&globals_lock);
    return 0;
}

void fixture_interior_release(void) {
    pthread_mutex_lock(&globals_lock);
    if (interior != NULL)
        free(interior - INTERIOR_OFFSET);
    interior = NULL;
    pthread_mutex_unlock(&globals_lock);
}

/* ---- heap misuse: only for a process whose free() reports instead of aborting ---- */

/* volatile keeps the compiler from diagnosing, or acting on, the misuse. */
void fixture_double_free(void) {
    void *volatile p = malloc(32); /* @double_free_alloc */
    free(p); /* @double_free_first */
    free(p); /* @double_free */
}

void fixture_invalid_free(void) {
    char *p = malloc(32); /* @invalid_free_alloc */
    char *volatile inside = p + INTERIOR_OFFSET;
    free(inside); /* @invalid_free */
    free(p);
}

/* Frees the address of a local array: a pointer malloc never returned. */
void fixture_free_stack_address(void) {
    char buffer[64];
    char *volatile p = buffer;
    p[0] = 1;
    free(p); /* @free_stack_address */
}

static char fixture_static_buffer[64];

/* Frees the address of a global: a pointer malloc never returned. */
void fixture_free_static_address(void) {
    char *volatile p = fixture_static_buffer;
    free(p); /* @free_static_address */
}

/* Mallocs 5 bytes and copies the 6 of "hello" (with its NUL) into them:
 * the classic one-byte overrun. Frees the block when `release`. */
void fixture_overrun_strcpy(int release) {
    char *p = malloc(5); /* @overrun_strcpy_alloc */
    strcpy(p, "hello");
    if (release)
        free(p); /* @overrun_strcpy */
}

/* Mallocs 32 bytes, frees them, then writes a byte 8 bytes in. */
void fixture_write_after_free(void) {
    char *volatile p = malloc(32); /* @write_after_free_alloc */
    free(p); /* @write_after_free_free */
    p[8] = 42; /* @write_after_free */
}

static void *fixture_double_free_main(void *arg) {
    (void)arg;
    fixture_double_free();
    return NULL;
}

/* Runs fixture_double_free on a C thread of its own, and joins it. */
int fixture_thread_double_free(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, fixture_double_free_main, NULL) != 0)
        return -1;
    return pthread_join(thread, NULL);
}

/* malloc_usable_size of a fresh block of `size`, which is freed. */
size_t fixture_usable_size(size_t size) {
    void *p = malloc(size);
    size_t usable = malloc_usable_size(p);
    free(p);
    return usable;
}
