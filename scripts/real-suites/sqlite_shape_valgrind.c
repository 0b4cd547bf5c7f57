#include <stdlib.h>
#include <string.h>
#include <stdint.h>
/* The shape of harness/tests/verdict_sqlite_shape.rs under valgrind: three 160-byte
 * blocks handed out 8 bytes in (SQLite's size header), given their roles by
 * address: argv[1][i] is the role of the i-th lowest block (0 handle, 1 db,
 * 2 btree); handle -> db, db <-> btree; then all forgotten.
 *
 *   gcc -O0 -g -o shape sqlite_shape_valgrind.c
 *   for o in 012 021 102 120 201 210; do
 *       valgrind --leak-check=full ./shape $o 2>&1 | grep -E 'definitely|indirectly'
 *   done
 *
 * valgrind 3.19 here: 1 definitely + 2 indirectly lost for 012 021 102 120,
 * 2 definitely + 1 indirectly for 201 and 210 (the btree lowest). */
static int cmp(const void *a, const void *b) { uintptr_t x = *(uintptr_t *)a, y = *(uintptr_t *)b; return x < y ? -1 : x > y; }
__attribute__((noinline)) static void forget(const int order[3]) {
    uintptr_t b[3];
    for (int i = 0; i < 3; i++) { uintptr_t *p = calloc(1, 160); p[0] = 152; b[i] = (uintptr_t)(p + 1); }
    qsort(b, 3, sizeof b[0], cmp);
    uintptr_t *role[3];
    for (int i = 0; i < 3; i++) role[order[i]] = (uintptr_t *)b[i];
    role[0][3] = (uintptr_t)role[1];
    role[1][3] = (uintptr_t)role[2];
    role[2][3] = (uintptr_t)role[1];
    memset(b, 0, sizeof b); memset(role, 0, sizeof role);
    __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) static void scrub(void) { volatile char buf[4096]; memset((char *)buf, 0, sizeof buf); }
int main(int argc, char **argv) {
    int order[3] = { argv[1][0] - '0', argv[1][1] - '0', argv[1][2] - '0' };
    forget(order);
    scrub();
    return 0;
}
