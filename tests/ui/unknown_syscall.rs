// A policy naming a syscall no ABI has: did-you-mean.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/good", policy = "$ROOTEMU_UI_FIXTURES/typo-policy.yaml");
}
