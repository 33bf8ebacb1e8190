// A table with the same syscall name twice.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/dup-key", policy = "$ROOTEMU_UI_FIXTURES/policy.yaml");
}
