//! Shell completions and the man page, generated from the clap definitions.

use super::conform;

fn stdout_of(args: &[&str]) -> String {
    let out = conform()
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn completions_cover_the_flags_and_parse_in_bash() {
    let bash = stdout_of(&["completions", "bash"]);
    for flag in [
        "--target",
        "--known-failing",
        "--client-cert",
        "--snapshots",
    ] {
        assert!(bash.contains(flag), "{flag} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("grpc-conform.bash");
    std::fs::write(&script, &bash).unwrap();
    match std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("bash not available ({e}): syntax not checked"),
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(stdout_of(&["completions", shell]).contains("grpc-conform"));
    }
    conform().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_page_documents_the_flags_and_subcommands() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH grpc-conform 1"), "{page}");
    assert!(page.contains("\\-\\-target"), "{page}");
    assert!(page.contains("snapshots"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    conform()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    let serve = std::fs::read_to_string(dir.path().join("grpc-conform-serve.1")).unwrap();
    assert!(serve.contains(".TH grpc-conform-serve 1"), "{serve}");
    assert!(serve.contains("\\-\\-tls\\-cert"), "{serve}");
    assert!(dir.path().join("grpc-conform-snapshots.1").exists());
}
