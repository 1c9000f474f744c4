//! The snapshot parser: any text is parsed or refused with file and line,
//! never a panic; whatever `render` writes (any UTF-8 in any field), with
//! editors' CRLF and trailing spaces, reads back as the contents.

use super::fuzz;
use grpc_conform::{
    normalise::snapshot_text as normalise,
    snapshot::{parse, render},
};
use proptest::{prelude::*, test_runner::TestCaseError};

/// Text made of the pieces a snapshot file has, and any other characters.
fn snapshot_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("---".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just("source: x".to_string()),
        Just("  indented".to_string()),
        Just("\u{feff}".to_string()),
        Just("é←✓😀".to_string()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

#[test]
fn any_text_is_parsed_or_refused_with_its_line() {
    fuzz(
        file!(),
        "snapshot parse",
        snapshot_like(),
        |text| match parse("f.snap", &text) {
            Ok(contents) => {
                prop_assert!(!contents.contains("\r\n"));
                prop_assert_eq!(contents.trim_end(), contents.as_str());
                Ok(())
            }
            Err(e) => {
                prop_assert!(e.to_string().starts_with("f.snap:"), "{}", e);
                Ok(())
            }
        },
    );
}

#[test]
fn what_render_writes_reads_back_even_after_an_editor() {
    let fields = (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<bool>(),
        any::<bool>(),
    );
    fuzz(
        file!(),
        "snapshot round trip",
        fields,
        |(name, source, description, contents, crlf, spaces)| {
            // A lone CR before an editor's CRLF is ambiguous by nature.
            prop_assume!(!(crlf && contents.contains('\r')));
            let mut text = render(&name, &source, &description, &contents);
            if spaces {
                text = text.replacen("---\n", "---  \n", 2);
            }
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            let parsed = parse("f.snap", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, normalise(contents.trim_end()));
            Ok(())
        },
    );
}
