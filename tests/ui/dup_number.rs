// A table with two syscalls on one number.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/dup-number", policy = "$ROOTEMU_UI_FIXTURES/policy.yaml");
}
