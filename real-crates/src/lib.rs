//! Nothing but tests: see `tests/`. Each file checks leakcheck's verdict on
//! a real crate against valgrind's (the README's agreement table).
