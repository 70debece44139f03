//! Tests of covenant policies: loading, exact thresholds, scopes, reports.

use super::*;
use crate::epoch::Epoch;
use crate::statement::{genesis_hash, StatementFigures, StatementParams, STATEMENT_VERSION};
use proofmesh_receipt::Identity;

const DAY_MS: u64 = 86_400_000;

fn body(day: u64, uptime_ms: u64, net: u64, passed: u64, failed: u64) -> StatementBody {
    StatementBody {
        version: STATEMENT_VERSION,
        provider: Identity::from_seed([1; 32]).public().clone(),
        coordinator: Identity::from_seed([2; 32]).public().clone(),
        epoch: Epoch::daily(19_000 + day).unwrap(),
        params: StatementParams {
            currency: Currency::Usd,
            protocol_fee_bps: 0,
            heartbeat_grace_ms: 60_000,
            verifiers: vec![],
        },
        figures: StatementFigures {
            net_revenue_micros: net,
            revenue_micros: net,
            audits_passed: passed,
            audits_failed: failed,
            uptime_ms,
            ..StatementFigures::default()
        },
        prev_statement_hash: genesis_hash(),
    }
}

const POLICY: &str = r#"
name = "senior facility"
currency = "USD"
min_uptime_bps = 9900
min_dscr = 1.25
debt_service_micros = 1000000
max_failed_audit_rate_bps = 50
"#;

#[test]
fn toml_and_json_policies_load_exactly() {
    let p = CovenantPolicy::from_toml_str(POLICY).unwrap();
    assert_eq!(p.min_dscr, Some(Ratio(12_500)));
    assert_eq!(p.scope, Scope::EachEpoch);
    let j = CovenantPolicy::from_json_str(
        r#"{"min_dscr":"1.3","debt_service_micros":5,"scope":"period"}"#,
    )
    .unwrap();
    assert_eq!(j.min_dscr, Some(Ratio(13_000)));
    assert_eq!(j.scope, Scope::Period);
    for bad in [
        "min_dscr = 1.25",                  // no debt service
        "min_uptime_bps = 10001",           // > 100%
        "name = \"x\"",                     // no checks
        "min_uptime_bps = 9900\nbogus = 1", // unknown field
        "min_dscr = -1.0\ndebt_service_micros = 1",
        "min_dscr = 1.00001\ndebt_service_micros = 1",
    ] {
        assert!(CovenantPolicy::from_toml_str(bad).is_err(), "{bad}");
    }
}

#[test]
fn thresholds_are_exact_at_the_boundary() {
    let p = CovenantPolicy::from_toml_str(POLICY).unwrap();
    let up = DAY_MS * 9_900 / 10_000;
    // Exactly 99% uptime, DSCR exactly 1.25, 1 failed in 200 = 0.5%.
    let ok = evaluate(&p, &[body(0, up, 1_250_000, 199, 1)]).unwrap();
    assert!(ok.passed, "{ok}");
    // One ms, one micro-unit, or one extra failure below the line fails.
    let worse = [
        body(0, up - 1, 1_250_000, 199, 1),
        body(0, up, 1_249_999, 199, 1),
        body(0, up, 1_250_000, 198, 2),
    ];
    for (i, b) in worse.into_iter().enumerate() {
        let r = evaluate(&p, &[b]).unwrap();
        assert!(!r.passed, "case {i}: {r}");
        assert_eq!(r.checks.iter().filter(|c| !c.passed).count(), 1, "case {i}");
    }
}

#[test]
fn scope_each_epoch_versus_period() {
    let mut p = CovenantPolicy::from_toml_str(POLICY).unwrap();
    p.min_uptime_bps = None;
    p.max_failed_audit_rate_bps = None;
    // Day 0 covers 2.0×, day 1 covers 1.0×: each-epoch fails, period (1.5×) passes.
    let s = [body(0, 0, 2_000_000, 0, 0), body(1, 0, 1_000_000, 0, 0)];
    let each = evaluate(&p, &s).unwrap();
    assert_eq!(each.checks.len(), 2);
    assert!(!each.passed);
    p.scope = Scope::Period;
    let period = evaluate(&p, &s).unwrap();
    assert_eq!(period.checks.len(), 1);
    assert!(period.passed, "{period}");
    match &period.checks[0].detail {
        CheckDetail::Dscr {
            dscr,
            debt_service_micros,
            ..
        } => {
            assert_eq!(*dscr, Ratio(15_000));
            assert_eq!(*debt_service_micros, 2_000_000);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn report_prints_numbers_and_serializes() {
    let p = CovenantPolicy::from_toml_str(POLICY).unwrap();
    let r = evaluate(&p, &[body(0, DAY_MS / 2, 3_000_000, 10, 0)]).unwrap();
    let text = r.to_string();
    assert!(text.starts_with("FAIL: senior facility"), "{text}");
    assert!(
        text.contains("FAIL [1641600000, 1641686400) uptime 50.00% >= 99.00%"),
        "{text}"
    );
    assert!(text.contains("DSCR 3.0000 >= 1.2500"), "{text}");
    assert!(text.contains("net revenue 3.000000 USD"), "{text}");
    assert!(
        text.contains("PASS [1641600000, 1641686400) failed-audit rate 0.00%"),
        "{text}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["checks"][1]["detail"]["dscr"], "3.0000");
    assert_eq!(json["passed"], false);
}

#[test]
fn evaluation_errors() {
    let p = CovenantPolicy::from_toml_str(POLICY).unwrap();
    assert_eq!(evaluate(&p, &[]), Err(CovenantError::NoStatements));
    let mut b = body(0, 0, 0, 0, 0);
    b.params.currency = Currency::Eur;
    assert!(matches!(
        evaluate(&p, &[b]),
        Err(CovenantError::Currency { .. })
    ));
    assert_eq!(Ratio::parse("0.0001"), Ok(Ratio(1)));
    assert!(Ratio::parse("1e3").is_err());
}
