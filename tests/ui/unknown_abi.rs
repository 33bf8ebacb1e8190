// An ABI the tables do not have.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/good", policy = "$ROOTEMU_UI_FIXTURES/policy.yaml", abis = [x86_64, "x86-64"]);
}
