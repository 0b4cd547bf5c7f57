/* The C side of the comparison's workloads (run.py). Built -O2 without frame
 * pointers, as a distribution's C library is. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One leaked block: the caller drops the pointer. Its own function, so that
 * every tool's stack of the leak can be checked for it. */
__attribute__((noinline)) void *compare_c_leak_one(size_t size) {
    char *p = malloc(size);
    if (p != NULL) {
        memset(p, 0x5a, size);
    }
    return p;
}

/* `iterations` malloc/free pairs of 16..511 bytes, and `leaks` blocks of 100
 * bytes lost along the way. Returns a checksum so nothing is optimised out. */
uint64_t compare_c_loop(size_t iterations, size_t leaks) {
    uint64_t sum = 0;
    size_t every = leaks == 0 ? iterations + 1 : iterations / leaks;
    size_t leaked = 0;
    for (size_t i = 0; i < iterations; i++) {
        size_t size = 16 + (i * 37) % 496;
        unsigned char *p = malloc(size);
        if (p == NULL) {
            abort();
        }
        p[0] = (unsigned char)i;
        p[size - 1] = 1;
        sum += p[0] + p[size - 1];
        free(p);
        if (every != 0 && i % every == every - 1 && leaked < leaks) {
            unsigned char *q = compare_c_leak_one(100);
            sum += q[0];
            q = NULL;
            leaked++;
        }
    }
    return sum;
}

struct node {
    struct node *left;
    struct node *right;
    uint64_t value;
};

static struct node *tree_build(size_t *remaining, unsigned depth) {
    if (*remaining == 0 || depth == 0) {
        return NULL;
    }
    (*remaining)--;
    struct node *n = malloc(sizeof *n);
    if (n == NULL) {
        abort();
    }
    n->value = *remaining;
    n->left = tree_build(remaining, depth - 1);
    n->right = tree_build(remaining, depth - 1);
    return n;
}

static uint64_t tree_sum(const struct node *n) {
    return n == NULL ? 0 : n->value + tree_sum(n->left) + tree_sum(n->right);
}

static void tree_free(struct node *n) {
    if (n != NULL) {
        tree_free(n->left);
        tree_free(n->right);
        free(n);
    }
}

/* A tree of `nodes` small live blocks (24 bytes each), summed `passes` times
 * while all of it is live, then freed. */
uint64_t compare_c_tree(size_t nodes, size_t passes) {
    size_t remaining = nodes;
    struct node *root = NULL;
    /* Depth 40 holds any count a machine can allocate. */
    root = tree_build(&remaining, 40);
    uint64_t sum = 0;
    for (size_t i = 0; i < passes; i++) {
        sum += tree_sum(root);
    }
    tree_free(root);
    return sum;
}
