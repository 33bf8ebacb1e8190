// A policy whose program cannot fit in 4096 instructions.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/too-long", policy = "$ROOTEMU_UI_FIXTURES/too-long-policy.yaml");
}
