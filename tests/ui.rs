//! Compile-fail tests: every table, policy and program error is a `compile_error!` with
//! the file, line and syscall, reviewed in the `.stderr` files next to each case.

#[test]
fn ui() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/fixtures");
    // SAFETY: set before trybuild starts any thread; the macros read it through `$VAR` paths.
    unsafe { std::env::set_var("ROOTEMU_UI_FIXTURES", fixtures) };
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
