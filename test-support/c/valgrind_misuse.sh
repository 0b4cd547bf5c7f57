#!/bin/sh
# Builds valgrind_misuse_driver.c with the C fixtures and runs each heap
# misuse case under valgrind memcheck, printing a Markdown table of the
# errors valgrind reports (its first line of each, and the "Address" line)
# next to what leakcheck reports for the same call inside a check
# (harness/tests/track_heap_misuse.rs).
#
#   test-support/c/valgrind_misuse.sh            # the table
#   VERBOSE=1 test-support/c/valgrind_misuse.sh  # and valgrind's full output
#
# Needs gcc and valgrind.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gcc -g -O0 -fno-builtin -fno-omit-frame-pointer -pthread -std=c11 \
    -o "$work/driver" "$here/valgrind_misuse_driver.c" "$here/fixtures.c"

# case|leakcheck in a check
cases='double_free|double_free: Address … is 0 bytes inside a block of size 32 free'"'"'d, with the bad call, free and allocation stacks
invalid_free|invalid_free: Address … is 8 bytes inside a block of size 32 alloc'"'"'d
free_stack_address|invalid_free: Address … is on a thread'"'"'s stack
free_static_address|invalid_free: Address … is in a loaded object
overrun_freed|overrun at the free: Address … is 0 bytes after a block of size 5 alloc'"'"'d (no stack of the write)
overrun_leaked|overrun at the verdict, and the block definitely lost
write_after_free|write_after_free at the verdict: Address … is 8 bytes inside a block of size 32 free'"'"'d (no stack of the write)
thread_double_free|double_free, charged to the check, stack through the C thread'"'"'s start routine'

echo '| case | valgrind | leakcheck in a check |'
echo '|---|---|---|'
echo "$cases" | while IFS='|' read -r name expected; do
    log="$work/$name.log"
    valgrind --leak-check=full "$work/driver" "$name" >"$log" 2>&1 || true
    if [ "${VERBOSE:-}" ]; then
        sed 's/^/    /' "$log" >&2
    fi
    errors=$(sed -n 's/^==[0-9]*== \(Invalid [^ ].*\|Mismatched.*\| Address 0x[0-9a-f]* \(is .*\)\)$/\1/p' "$log" |
        sed 's/^ Address 0x[0-9a-f]* /Address … /' | paste -sd ';' - | sed 's/;/; /g')
    lost=$(sed -n 's/^==[0-9]*== *definitely lost: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/definitely lost \2 \/ \1 B/p' "$log")
    echo "| \`$name\` | ${errors:-no error}${lost:+; $lost} | $expected |"
done
