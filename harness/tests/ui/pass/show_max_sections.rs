// `show` with valgrind's kind words (its `--show-leak-kinds`), `max_sections`
// with a whole number, alone and with the other arguments.
use leakcheck::leak_checked;

#[leak_checked(show = "definite,indirect")]
fn show_list() {}

#[leak_checked(show = "all")]
fn show_all() {}

#[leak_checked(show = "none", max_sections = 0)]
fn summary_only() {}

#[leak_checked(max_sections = 20)]
fn twenty_sections() {}

#[leak_checked(strict, show = "reachable", max_sections = 1, suppress = "leak:x")]
fn with_everything() {}

fn main() {}
