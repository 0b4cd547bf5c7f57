// `fail_on` with each of valgrind's kind words, lists of them, `all`, `none`.
use leakcheck::leak_checked;

#[leak_checked(fail_on = "definite")]
fn definite() {}

#[leak_checked(fail_on = "indirect")]
fn indirect() {}

#[leak_checked(fail_on = "possible")]
fn possible() {}

#[leak_checked(fail_on = "reachable")]
fn reachable() {}

#[leak_checked(fail_on = "all")]
fn all() {}

#[leak_checked(fail_on = "none")]
fn none() {}

#[leak_checked(fail_on = "definite,possible")]
fn list() {}

#[leak_checked(fail_on = " definite , indirect,definite ")]
fn spaces_and_duplicates() {}

#[leak_checked(fail_on = r"all",)]
fn raw_string_trailing_comma() {}

fn main() {}
