// An ABI file whose AUDIT_ARCH disagrees with its ELF facts.
fn main() {
    let _f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/bad-arch", policy = "$ROOTEMU_UI_FIXTURES/policy.yaml");
}
