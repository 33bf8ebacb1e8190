// A caller's own tables and policy, one ABI: compiles, and the program is there.
fn main() {
    let f = rootemu::filter!(tables = "$ROOTEMU_UI_FIXTURES/good", policy = "$ROOTEMU_UI_FIXTURES/policy.yaml", abis = [x86_64]);
    assert_eq!(f.abis.len(), 1);
    assert!(f.program.len() > 5);
}
