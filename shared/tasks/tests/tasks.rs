#![allow(clippy::unwrap_used)] // test fixtures: a failed unwrap is a failed test
//! Verifiers against the worked examples of `testdata/tasks.json` (copied
//! from known vectors), tasks of contracts, shapes, properties.

use proptest::prelude::*;
use serde_json::{json, Value};
use uwl_ledger::{Contract, TaskSpec};
use uwl_tasks::*;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../testdata/tasks.json")).unwrap()
}

fn matrix(v: &Value) -> Matrix {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn hash_vectors() {
    let v = vectors();
    let h = &v["hash"];
    let prefix = hex::decode(h["params"]["prefix"].as_str().unwrap()).unwrap();
    let bits = h["params"]["difficulty_bits"].as_u64().unwrap() as u32;
    for (list, expect) in [("valid", true), ("invalid", false)] {
        for case in h[list].as_array().unwrap() {
            let nonce = case["nonce"].as_u64().unwrap();
            let mut input = prefix.clone();
            input.extend_from_slice(&nonce.to_le_bytes());
            let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&input));
            assert_eq!(hex::encode(digest), case["sha256"].as_str().unwrap(), "nonce {nonce}");
            assert_eq!(leading_zero_bits(&digest), case["leading_zero_bits"].as_u64().unwrap() as u32);
            assert_eq!(verify_hash(&prefix, bits, nonce), expect, "nonce {nonce}");
        }
    }
    // the smallest solution is at most the smallest listed valid nonce
    assert!(solve_hash(&prefix, bits) <= 2201);
}

#[test]
fn matmul_vectors() {
    let v = vectors();
    let m = &v["matmul"];
    let (a, b) = (matrix(&m["params"]["a"]), matrix(&m["params"]["b"]));
    let c = matrix(&m["result"]["c"]);
    let wrong = matrix(&m["wrong_result"]["c"]);
    assert_eq!(multiply(&a, &b), c);
    let mut rng = rand::rngs::OsRng;
    for _ in 0..100 {
        assert!(verify_matmul(&a, &b, &c, FREIVALDS_ROUNDS, &mut rng));
        assert!(!verify_matmul(&a, &b, &wrong, FREIVALDS_ROUNDS, &mut rng));
    }
    // shape mismatches are rejected, not panics
    assert!(!verify_matmul(&a, &b, &c[..2].to_vec(), 2, &mut rng));
}

fn contract(spec: TaskSpec) -> Contract {
    Contract { spec, seed: 7, client_id: "alice".into(), reward: 5, expires_at: 2_000 }
}

#[test]
fn kinds_parse_and_name_themselves() {
    assert_eq!("hash".parse::<Kind>().unwrap(), Kind::Hash);
    assert_eq!(Kind::from(&TaskSpec::Matmul { n: 2 }).as_str(), "matmul");
    assert!("sort".parse::<Kind>().is_err());
}

#[test]
fn tasks_carry_what_is_needed_to_compute_them() {
    let c = contract(TaskSpec::Matmul { n: 4 });
    let t = uwl_tasks::task(&c, "id".into());
    let (a, b) = matrices(7, 4);
    assert_eq!(serde_json::to_value(&t.params).unwrap(), json!({ "n": 4, "a": a, "b": b }));
    assert!(a.iter().chain(&b).flatten().all(|x| *x < 1 << 16));
    assert_ne!(a, b);
    let h = uwl_tasks::task(&contract(TaskSpec::Hash { difficulty_bits: 10 }), "id".into());
    let wire = serde_json::to_value(&h).unwrap();
    assert_eq!(wire["params"]["prefix"].as_str().unwrap().len(), 32);
    assert_eq!(serde_json::from_value::<uwl_tasks::Task>(wire).unwrap(), h, "a task decodes as it was sent");
    // SplitMix64 is the documented generator (reference output for seed 0)
    assert_eq!(SplitMix64(0).next_u64(), 0xe220a8397b1dcdaf);
}

#[test]
fn results_are_shape_checked_then_verified() {
    let m = contract(TaskSpec::Matmul { n: 3 });
    let good = solve(&uwl_tasks::params(&m));
    let parsed = parse_result(&m, &good).unwrap();
    assert!(verify(&m, &parsed));
    for bad in [
        json!([1]),
        json!({}),
        json!({"c": [[1, 2, 3]]}),
        json!({"c": [[1, 2], [3, 4], [5, 6]]}),
        json!({"c": [[1, 2, -3], [0, 0, 0], [0, 0, 0]]}),
        json!({"c": [[1.5, 2, 3], [0, 0, 0], [0, 0, 0]]}),
        json!({"c": [[u64::MAX, 0, 0], [0, 0, 0], [0, 0, 0]]}),
        json!({"c": good["c"], "extra": 1}),
        json!({"nonce": 1}),
    ] {
        assert!(parse_result(&m, &bad).is_err(), "{bad}");
    }
    let mut wrong = good.clone();
    wrong["c"][1][1] = json!(good["c"][1][1].as_u64().unwrap() + 1);
    assert!(!verify(&m, &parse_result(&m, &wrong).unwrap()));

    let h = contract(TaskSpec::Hash { difficulty_bits: 10 });
    let good = solve(&uwl_tasks::params(&h));
    assert!(verify(&h, &parse_result(&h, &good).unwrap()));
    assert!(parse_result(&h, &json!({"nonce": -1})).is_err());
    assert!(parse_result(&h, &json!({"nonce": "1"})).is_err());
    assert!(parse_result(&h, &json!({"c": [[1]]})).is_err());
    let n = good["nonce"].as_u64().unwrap();
    // the smallest solution: every smaller nonce fails
    assert!((0..n).all(|x| !verify(&h, &WorkResult::Hash { nonce: x })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn freivalds_accepts_products_and_rejects_any_single_error(seed in any::<u64>(), n in 1usize..12, i in 0usize..12, j in 0usize..12, delta in 1u64..1_000_000) {
        let (a, b) = matrices(seed, n);
        let c = multiply(&a, &b);
        let mut rng = rand::rngs::OsRng;
        prop_assert!(verify_matmul(&a, &b, &c, FREIVALDS_ROUNDS, &mut rng));
        let mut wrong = c.clone();
        let (i, j) = (i % n, j % n);
        wrong[i][j] = wrong[i][j].wrapping_add(delta);
        prop_assert!(!verify_matmul(&a, &b, &wrong, FREIVALDS_ROUNDS, &mut rng));
    }
}
