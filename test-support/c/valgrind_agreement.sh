#!/bin/sh
# Builds valgrind_driver.c with the C fixtures and runs each leak
# classification scenario under valgrind memcheck, printing a Markdown table
# of what valgrind reports at exit next to what leakcheck is expected to
# report for the same scenario inside a check (harness/tests/verdict_classification.rs).
#
#   test-support/c/valgrind_agreement.sh            # the table
#   VERBOSE=1 test-support/c/valgrind_agreement.sh  # and valgrind's full output
#
# Needs gcc and valgrind. Exits non-zero if valgrind could not run a scenario.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -g -O0 -fno-builtin -fno-omit-frame-pointer -pthread -std=c11 \
    -o "$work/driver" "$here/valgrind_driver.c" "$here/fixtures.c"

# scenario|what it does|leakcheck expected
scenarios='cache|C global cache filled|still reachable 1 block / 64 B; clean
table|lazily initialised C table, looked up twice|still reachable 1 block / 128 B; clean (a second check: nothing)
list|C list of 5, head dropped|definitely lost 1 / 32 B, indirectly lost 4 / 128 B
interior|block kept only through an interior pointer from a global|possibly lost 1 / 32 B; fails
stale_stack|only copies of the pointer in dead stack (main thread)|definitely lost 1 / 48 B
stale_stack_thread|only copies in the dead stack of a joined thread|definitely lost 1 / 48 B
cycle|two C blocks pointing to each other, unreferenced|definitely lost 1 / 32 B, indirectly lost 1 / 32 B
ring4|ring of four C blocks, unreferenced|definitely lost 1 / 32 B, indirectly lost 3 / 96 B
pair_abc|A → B ⇄ C, unreferenced, allocated A, B, C|definitely lost 1 / 48 B, indirectly lost 2 / 64 B
pair_bca|the same, allocated B, C, A|definitely lost 1 / 48 B, indirectly lost 2 / 64 B
pair_cba|the same, allocated C, B, A (C lowest)|definitely lost 1 / 48 B, indirectly lost 2 / 64 B
older_block|block stored in a slots block allocated before (held by a global)|still reachable 1 block / 40 B (the slots block is not the check'"'"'s); clean
live_thread|block held on the stack of a thread alive at the verdict|still reachable 1 block / 40 B (keeper state and thread TLS are not the check'"'"'s); clean'

# "definitely lost: 32 bytes in 1 blocks" lines of the LEAK SUMMARY -> "definitely lost 1 / 32 B, ..."
summarise() {
    sed -n 's/^==[0-9]*== *\(definitely lost\|indirectly lost\|possibly lost\|still reachable\|suppressed\): \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1|\3|\2/p' "$1" |
        awk -F'|' '$2 != "0" { out = out (out ? ", " : "") $1 " " $2 " / " $3 " B" }
                   END { print (out ? out : "no leaks") }'
}

echo '| scenario | valgrind at exit | leakcheck expected in a check |'
echo '|---|---|---|'
echo "$scenarios" | while IFS='|' read -r name what expected; do
    log="$work/$name.log"
    # Leak errors do not change valgrind's exit status without --error-exitcode.
    valgrind --leak-check=full --show-leak-kinds=all \
        --errors-for-leak-kinds=definite,indirect,possible \
        "$work/driver" "$name" >"$log" 2>&1 || true
    if [ "${VERBOSE:-}" ]; then
        sed 's/^/    /' "$log" >&2
    fi
    if ! grep -q 'ERROR SUMMARY' "$log"; then
        echo "valgrind did not run $name:" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "| \`$name\`: $what | $(summarise "$log") | $expected |"
done
