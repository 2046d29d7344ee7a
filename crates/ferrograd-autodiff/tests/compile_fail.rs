//! Shape and tape mistakes that must be compile errors. Each case's `.stderr` snapshot
//! under `tests/compile_fail/` pins the reason it fails, not only that it fails; after a
//! deliberate change of message, regenerate them with
//! `TRYBUILD=overwrite cargo test -p ferrograd-autodiff --test compile_fail` and read the diff.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
