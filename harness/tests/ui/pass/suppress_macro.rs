// `leakcheck::suppress!` at item level, at the root and in modules, in a
// crate that names no `inventory` itself.
leakcheck::suppress!("leak:sqlite3_initialize");

leakcheck::suppress!(r#"
{
   sqlite-init
   Memcheck:Leak
   fun:malloc
   ...
   fun:sqlite3_initialize
}
"#);

mod ffi {
    leakcheck::suppress!("leak:libz::init",);

    mod deeper {
        use leakcheck::suppress;

        suppress!(r"leak:deeper");
    }
}

fn main() {}
