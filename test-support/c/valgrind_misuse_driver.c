/*
 * A reference program, not built by build.rs: runs one heap-misuse fixture
 * of fixtures.c, so that valgrind memcheck's report can be set beside what
 * leakcheck reports for the same call inside a check
 * (harness/tests/track_heap_misuse.rs). valgrind_misuse.sh builds it and
 * runs every case under valgrind.
 *
 *     gcc -g -O0 -fno-builtin -pthread -o driver valgrind_misuse_driver.c fixtures.c
 *     valgrind ./driver double_free
 */
#include <string.h>
#include <unistd.h>

/* From fixtures.c. */
void fixture_double_free(void);
void fixture_invalid_free(void);
void fixture_free_stack_address(void);
void fixture_free_static_address(void);
void fixture_overrun_strcpy(int release);
void fixture_write_after_free(void);
int fixture_thread_double_free(void);

static void overrun_freed(void) { fixture_overrun_strcpy(1); }
static void overrun_leaked(void) { fixture_overrun_strcpy(0); }
static void thread_double_free(void) { (void)fixture_thread_double_free(); }

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"double_free", fixture_double_free},
    {"invalid_free", fixture_invalid_free},
    {"free_stack_address", fixture_free_stack_address},
    {"free_static_address", fixture_free_static_address},
    {"overrun_freed", overrun_freed},
    {"overrun_leaked", overrun_leaked},
    {"write_after_free", fixture_write_after_free},
    {"thread_double_free", thread_double_free},
};

int main(int argc, char **argv) {
    for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return 0;
        }
    }
    static const char usage[] = "usage: driver double_free|invalid_free|free_stack_address|"
                                "free_static_address|overrun_freed|overrun_leaked|"
                                "write_after_free|thread_double_free\n";
    (void)!write(2, usage, sizeof usage - 1);
    return 2;
}
