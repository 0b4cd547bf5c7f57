// `suppress` once, repeated, as a valgrind block in a raw string.
use leakcheck::leak_checked;

#[leak_checked(suppress = "leak:sqlite3_initialize")]
fn once() {}

#[leak_checked(suppress = "leak:sqlite3_initialize", suppress = "leak:libz::init")]
fn repeated() {}

#[leak_checked(suppress = r#"
{
   sqlite-init
   Memcheck:Leak
   fun:malloc
   ...
   fun:sqlite3_initialize
}
"#)]
fn valgrind_block() {}

#[leak_checked(
    suppress = "leak:first",
    suppress = r"leak:second",
)]
fn multi_line_trailing_comma() {}

fn main() {}
