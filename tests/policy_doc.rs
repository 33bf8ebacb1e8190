//! Every example policy in docs/policy.md loads against the bundled tables, compiles,
//! verifies and proves, and its program gives the verdicts the page states.

use rootemu_codegen::sim::{self, SeccompData};
use rootemu_codegen::{Action, Filter, Policy, Tables};
use rootemu_tests::{tables_dir, workspace};
use std::path::Path;

/// The ```yaml blocks of the page that are whole policies (start with `policy:`).
fn examples() -> Vec<String> {
    let page = std::fs::read_to_string(workspace().join("docs/policy.md")).unwrap();
    page.split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split_once("```"))
        .map(|(yaml, _)| yaml.to_string())
        .filter(|y| y.starts_with("policy:"))
        .collect()
}

/// `(policy, syscall, args, verdict)` as the page states them.
const STATED: &[(&str, &str, [u64; 6], Action)] = &[
    ("chown-only", "chown", [0; 6], Action::Errno(0)),
    ("chown-only", "setuid", [0; 6], Action::Allow),
    ("refuse-ownership", "chown", [0; 6], Action::Errno(1)),
    ("refuse-ownership", "kexec_load", [0; 6], Action::KillProcess),
    ("refuse-ownership", "getpid", [0; 6], Action::Allow),
    ("devices", "mknod", [0, 0o020644, 0x103, 0, 0, 0], Action::Errno(0)),
    ("devices", "mknod", [0, 0o020000, 0, 0, 0, 0], Action::Allow),
    ("devices", "mknod", [0, 0o010644, 0, 0, 0, 0], Action::Allow),
    ("first-match", "mknod", [0, 0o010644, 0, 0, 0, 0], Action::Allow),
    ("first-match", "mknod", [0, 0o100644, 0, 0, 0, 0], Action::Errno(38)),
];

#[test]
fn every_example_policy_proves_and_means_what_the_page_says() {
    let tables = Tables::load_dir(&tables_dir()).unwrap();
    let examples = examples();
    assert_eq!(examples.len(), 4, "the page's examples");
    let mut checked = 0;
    for text in &examples {
        let policy = Policy::parse(Path::new("docs/policy.md"), text, &tables).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let name = policy.name.clone();
        let f = Filter::from_parts(tables.clone(), policy).unwrap_or_else(|e| panic!("{name}: {e}"));
        let x86_64 = f.tables.get("x86_64").unwrap();
        for (_, syscall, args, want) in STATED.iter().filter(|s| s.0 == name) {
            let d = SeccompData { nr: x86_64.nr(syscall).unwrap(), arch: x86_64.audit_arch, ip: 0, args: *args, big_endian: false };
            assert_eq!(sim::run(&f.program, &d).unwrap().ret, want.to_ret(), "{name}: {syscall} {args:x?}");
            checked += 1;
        }
    }
    assert_eq!(checked, STATED.len(), "every stated verdict belongs to an example on the page");
}
