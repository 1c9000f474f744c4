//! `grpc-conform check`: every bad fixture reported, each with file, line,
//! column, field and a suggestion for a misspelt name.

use super::{conform, corpus_fixture};
use predicates::prelude::*;
use std::fs;

#[test]
fn check_reports_every_bad_fixture_with_place_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let good = corpus_fixture("greeter/unary/say-hello");
    let write = |name: &str, text: String| fs::write(dir.path().join(name), text).unwrap();
    write(
        "a-method.json",
        good.replace("/Greeter/SayHello", "/Greeter/SayHelo"),
    );
    write(
        "b-field.json",
        good.replace("\"name\": \"world\"", "\"nmae\": \"world\""),
    );
    write(
        "c-step.json",
        good.replace("\"half_close\"", "\"half_clsoe\""),
    );
    write("d-good.json", good.clone());
    conform()
        .arg("check")
        .arg("--fixtures")
        .arg(dir.path())
        .assert()
        .code(2)
        .stdout("4 fixtures checked: 1 valid, 3 invalid\n")
        .stderr(predicates::str::contains(
            "a-method.json:7:17: at `calls[0].method`: no method /Greeter/SayHelo in the descriptors; did you mean /Greeter/SayHello?",
        ))
        .stderr(predicates::str::contains(
            "b-field.json:9:30: at `calls[0].steps[0].send.message`: unknown field `nmae` in HelloRequest; did you mean `name`?",
        ))
        .stderr(predicates::str::contains(
            "c-step.json:10:20: at `calls[0].steps[1]`: unknown variant `half_clsoe`",
        ))
        .stderr(predicates::str::contains("d-good").not());
}

#[test]
fn check_passes_the_corpus_and_own_protos() {
    conform().arg("check").assert().code(0).stdout(
        predicates::str::is_match(r"^\d+ fixtures checked: (\d+) valid, 0 invalid\n$").unwrap(),
    );
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/greeter.proto");
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("hello.json"),
        corpus_fixture("greeter/unary/say-hello"),
    )
    .unwrap();
    conform()
        .args(["check", "--proto"])
        .arg(&proto)
        .arg("--fixtures")
        .arg(dir.path())
        .assert()
        .code(0);
}
