//! C fixtures for leakcheck tests.
