// A policy file that does not exist.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/good", policy = "$ROOTEMU_UI_FIXTURES/no-such-policy.yaml");
}
