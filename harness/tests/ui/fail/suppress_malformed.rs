use leakcheck::leak_checked;

// A misspelt tool kind inside a valgrind block: the error is on the string,
// and says which line of it.
#[leak_checked(suppress = r#"
{
   zlib-tables
   Memcheck:Leek
   fun:malloc
}
"#)]
fn misspelt_kind() {}

// Not a LeakSanitizer line either.
#[leak_checked(strict, suppress = "lek:sqlite3_initialize")]
fn misspelt_type() {}

// A valgrind block written on one line.
#[leak_checked(suppress = "{ x Memcheck:Leak foo:bar }")]
fn block_on_one_line() {}

fn main() {}
