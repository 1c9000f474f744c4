//! The rule list and docs/coverage.md against the corpus: every citation is a
//! known rule, every rule is checked or says why not, and the document is
//! what `grpc-conform coverage` writes today.

use assert_cmd::Command;
use grpc_conform::{
    coverage::{parse_rules, Coverage, EMBEDDED_RULES, RULES_PATH},
    fixture::load_embedded,
};

#[test]
fn every_fixture_cites_known_rules_and_every_rule_is_accounted_for() {
    let rules = parse_rules(RULES_PATH, EMBEDDED_RULES).expect("docs/rules.toml parses");
    let fixtures = load_embedded().expect("the corpus parses");
    let coverage = Coverage::build(rules, RULES_PATH, &fixtures).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(coverage.fixtures, fixtures.len());
}

#[test]
fn docs_coverage_md_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/coverage.md");
    let rules = parse_rules(RULES_PATH, EMBEDDED_RULES).expect("docs/rules.toml parses");
    let fixtures = load_embedded().expect("the corpus parses");
    let expected = Coverage::build(rules, RULES_PATH, &fixtures)
        .unwrap_or_else(|e| panic!("{e}"))
        .render_markdown();
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == expected,
        "docs/coverage.md is stale: run `cargo run -- coverage --output docs/coverage.md`"
    );
}

#[test]
fn the_command_checks_a_file_and_names_an_unknown_citation() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("coverage.md");
    std::fs::write(&stale, "old").unwrap();
    Command::cargo_bin("grpc-conform")
        .unwrap()
        .args(["coverage", "--check"])
        .arg(&stale)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("is stale"));

    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::write(
        fixtures.join("x.json"),
        r#"{"description": "d", "rule": "http2/no-such-rule", "level": "MUST",
            "calls": [{"method": "/Greeter/SayHello", "steps": ["half_close"]}]}"#,
    )
    .unwrap();
    Command::cargo_bin("grpc-conform")
        .unwrap()
        .args(["coverage", "--fixtures"])
        .arg(&fixtures)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "x.json: at `rule`: `http2/no-such-rule` is not a rule of docs/rules.toml",
        ));
}
