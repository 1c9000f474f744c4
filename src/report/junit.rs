//! JUnit XML: one suite, one test case per fixture; a failure carries the
//! failed checks and the diff, an error the harness error.

use super::ReportError;
use crate::run::{RunReport, Verdict};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The report as JUnit XML.
pub fn render(report: &RunReport) -> Result<String, ReportError> {
    let mut suite = TestSuite::new("grpc-conform");
    suite.add_property(("transport", report.transport.as_str()));
    suite.add_property(("observer", yes_no(report.capabilities.observer)));
    for (method, present) in &report.capabilities.methods {
        suite.add_property((format!("method:{method}"), yes_no(*present).to_string()));
    }
    for (header, support) in &report.capabilities.control {
        let value = serde_json::to_value(support).map_or(String::new(), |v| {
            v.as_str().unwrap_or_default().to_string()
        });
        suite.add_property((format!("control:{header}"), value));
    }
    for (encoding, accepted) in &report.capabilities.encodings {
        suite.add_property((
            format!("encoding:{encoding}"),
            yes_no(*accepted).to_string(),
        ));
    }
    for r in &report.results {
        let status = match r.verdict {
            Verdict::Pass | Verdict::KnownFailure => {
                let mut s = TestCaseStatus::success();
                if r.verdict == Verdict::KnownFailure {
                    s = TestCaseStatus::skipped();
                    s.set_message("known failure");
                }
                s
            }
            Verdict::Fail | Verdict::Stale => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let message = if r.verdict == Verdict::Stale {
                    "listed as known-failing but passed".to_string()
                } else {
                    format!(
                        "transcript differs from the snapshot ({}: {})",
                        r.level.as_str(),
                        r.rule
                    )
                };
                s.set_message(message);
                let mut text = r.failed_checks.join("\n");
                if let Some(diff) = &r.diff {
                    text.push('\n');
                    text.push_str(diff);
                }
                s.set_description(text);
                s
            }
            Verdict::Skipped | Verdict::NotApplicable | Verdict::Unstable => {
                let mut s = TestCaseStatus::skipped();
                let reason = r.reason.clone().unwrap_or_default();
                s.set_message(match r.verdict {
                    Verdict::Unstable => format!("unstable: {reason}"),
                    _ => reason,
                });
                s
            }
            Verdict::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(r.error.clone().unwrap_or_default());
                s
            }
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_classname(
            r.name
                .rsplit_once('/')
                .map_or("", |(group, _)| group)
                .replace('/', "."),
        );
        case.set_time(Duration::from_millis(r.duration_ms));
        suite.add_test_case(case);
    }
    let mut junit = Report::new("grpc-conform");
    junit.set_time(Duration::from_millis(report.duration_ms));
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}
