//! `check-config`: a configuration is judged as the plugin judges it at load, without Envoy.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn check(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_check-config"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("check-config starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
    child.wait_with_output().expect("check-config ends")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn shipped_configurations_pass_and_mistakes_are_named() {
    let ok = check(&["examples/descope.json", "envoy/demo-plugin-config.json"], "");
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert_eq!(
        stdout(&ok),
        "examples/descope.json: ok (1 provider(s), 2 rule(s))\nenvoy/demo-plugin-config.json: ok (1 provider(s), 2 rule(s))\n"
    );

    let typo = check(&["-"], r#"{"providers": {"p": {"isuer": "x"}}}"#);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stdout(&typo).starts_with("-: invalid configuration at `providers.p`: unknown field `isuer`"),
        "{}",
        stdout(&typo)
    );

    // Valid, but protecting nothing: said, not refused.
    let open = check(&["-"], r#"{"providers": {"descope": {"descope": {"project_id": "P2abc"}}}}"#);
    assert!(open.status.success());
    assert!(stdout(&open).contains("-: warning: no rule requires a token"), "{}", stdout(&open));

    // One refused file among good ones fails the whole check; a missing file is refused.
    let mixed = check(&["examples/descope.json", "no-such-file.json"], "");
    assert_eq!(mixed.status.code(), Some(1));
    assert!(stdout(&mixed).contains("no-such-file.json: cannot read:"), "{}", stdout(&mixed));
    assert_eq!(check(&[], "").status.code(), Some(2), "usage");
}
