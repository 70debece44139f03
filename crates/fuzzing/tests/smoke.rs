//! Stable-Rust smoke run of every fuzz target body: each body runs on its
//! valid seeds, then on a few thousand proptest-generated inputs (seeds with
//! bit flips, interesting integers, dictionary insertions, deletions,
//! truncations, duplications and splices; for JSON seeds also value-level
//! edits that keep the JSON well-formed, so the checks behind the parser
//! (receipt verification, request validation) see many inputs; plus raw
//! random bytes). The RNG
//! seed is fixed so CI is reproducible; set `PROPTEST_RNG_SEED` to explore
//! and `PROPTEST_CASES` to change the number of cases per target.
//!
//! A failure names the target, the panic, and the recipe (seed index and
//! mutation list, shrunk by proptest) that rebuilds the input.

use std::sync::Arc;

use proofmesh_fuzzing::{seeds, Body, TARGETS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use serde_json::Value;

/// Tokens worth inserting: JSON structure, edge numbers, escapes, prefixes
/// the string parsers look for, multi-byte UTF-8, and GGUF magic.
const DICTIONARY: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-",
    b"0",
    b"-1",
    b"1e999",
    b"-0.0",
    b"1.5e-320",
    b"4294967296",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"\"\\ud800\"",
    b"\\u0000",
    b"NaN",
    b"\"type\":\"hello\"",
    b"\"type\":\"job\"",
    b"ed25519:",
    b"sha256:",
    b"pm_",
    b"_",
    b"f",
    b"A",
    "\u{e9}".as_bytes(),
    "\u{10ffff}".as_bytes(),
    b"\xff\xfe",
    b"GGUF",
];

/// Little-endian integers worth writing over header fields.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// Where a mutation applies. `front` confines it to the first `focus` bytes
/// (the GGUF header); elsewhere `focus` is unbounded and it has no effect.
#[derive(Clone, Debug)]
struct Pos {
    front: bool,
    at: Index,
}

impl Pos {
    fn get(&self, len: usize, focus: usize) -> usize {
        let span = if self.front { len.min(focus) } else { len };
        if span == 0 {
            0
        } else {
            self.at.index(span)
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    /// Overwrite with `INTERESTING[value]` as a little-endian integer of `width` bytes.
    Integer(Pos, Index, u8),
    Insert(Pos, Vec<u8>),
    Delete(Pos, usize),
    Truncate(Pos),
    Duplicate(Pos, usize),
    /// Copy `len` bytes from position `from` of seed `donor` over position `at`.
    Splice(Pos, Index, Pos, usize),
}

/// JSON values worth substituting: type confusions, range edges (including
/// numbers that overflow `f32`, `u32` and `u64`), empties, and the strings
/// the validators compare against.
fn json_values() -> Vec<Value> {
    let key = proofmesh_fuzzing::seeds::public_key().remove(0);
    let key = String::from_utf8(key).expect("key is text");
    [
        "null",
        "true",
        "0",
        "1",
        "-1",
        "2",
        "0.5",
        "2.0000001",
        "-0.0",
        "1e-50",
        "3.5e38",
        "1e300",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "-9223372036854775808",
        "\"\"",
        "\"a\"",
        "\"user\"",
        "\"developer\"",
        "\"wizard\"",
        "\"text\"",
        "\"image_url\"",
        "\"sha256:\"",
        "[]",
        "{}",
        "[\"\"]",
        "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
        "{\"type\":\"text\"}",
        "{\"type\":\"text\",\"text\":7}",
    ]
    .iter()
    .map(|v| serde_json::from_str(v).expect("dictionary value parses"))
    .chain([
        Value::String(key),
        Value::String("x".repeat(65)),
        Value::String("\u{0}\u{10ffff}".into()),
    ])
    .collect()
}

/// A well-formedness-preserving edit of one node of a JSON document; the
/// node is picked by `Index` over all nodes in document order.
#[derive(Clone, Debug)]
enum JsonEdit {
    Replace(Index, Index),
    /// Replace with a dictionary value of the same JSON type (number for
    /// number, string for string, ...), which usually still deserializes.
    ReplaceSameType(Index, Index),
    Remove(Index),
    DuplicateElement(Index),
    AddField(Index, Index),
}

/// How to build one input: mutate a seed's bytes, edit a JSON seed's
/// values, or take raw bytes.
#[derive(Clone, Debug)]
enum Recipe {
    Mutated(usize, Vec<Mutation>),
    Json(usize, Vec<JsonEdit>, Option<Mutation>),
    Raw(Vec<u8>),
}

fn pos() -> impl Strategy<Value = Pos> {
    (prop::bool::weighted(0.85), any::<Index>()).prop_map(|(front, at)| Pos { front, at })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        3 => prop::sample::select(DICTIONARY).prop_map(|t| t.to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        3 => (pos(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        2 => (pos(), any::<u8>()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        2 => (pos(), any::<Index>(), prop::sample::select(vec![1u8, 2, 4, 8]))
            .prop_map(|(p, v, w)| Mutation::Integer(p, v, w)),
        3 => (pos(), token).prop_map(|(p, t)| Mutation::Insert(p, t)),
        2 => (pos(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => pos().prop_map(Mutation::Truncate),
        1 => (pos(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        1 => (pos(), any::<Index>(), pos(), 1usize..64)
            .prop_map(|(a, d, f, n)| Mutation::Splice(a, d, f, n)),
    ]
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        2 => (any::<Index>(), any::<Index>()).prop_map(|(n, v)| JsonEdit::Replace(n, v)),
        5 => (any::<Index>(), any::<Index>()).prop_map(|(n, v)| JsonEdit::ReplaceSameType(n, v)),
        2 => any::<Index>().prop_map(JsonEdit::Remove),
        1 => any::<Index>().prop_map(JsonEdit::DuplicateElement),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(n, v)| JsonEdit::AddField(n, v)),
    ]
}

/// `json` weights value-level edits for targets whose seeds are JSON.
fn recipe(n_seeds: usize, json: bool) -> impl Strategy<Value = Recipe> {
    let json_weight = if json { 8 } else { 0 };
    prop_oneof![
        8 => (0..n_seeds, prop::collection::vec(mutation(), 1..6))
            .prop_map(|(s, m)| Recipe::Mutated(s, m)),
        json_weight => (
            0..n_seeds,
            prop::collection::vec(json_edit(), 1..5),
            prop::option::weighted(0.2, mutation()),
        )
            .prop_map(|(s, e, m)| Recipe::Json(s, e, m)),
        1 => prop::collection::vec(any::<u8>(), 0..96).prop_map(Recipe::Raw),
    ]
}

/// JSON pointers of every node, in document order.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let esc = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{esc}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn edit_json(doc: &mut Value, e: &JsonEdit, values: &[Value]) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match e {
        JsonEdit::Replace(n, v) => {
            if let Some(node) = doc.pointer_mut(&pick(n)) {
                *node = values[v.index(values.len())].clone();
            }
        }
        JsonEdit::ReplaceSameType(n, v) => {
            let kind = |x: &Value| std::mem::discriminant(x);
            if let Some(node) = doc.pointer_mut(&pick(n)) {
                let same: Vec<&Value> = values.iter().filter(|x| kind(x) == kind(node)).collect();
                if !same.is_empty() {
                    *node = same[v.index(same.len())].clone();
                }
            }
        }
        JsonEdit::Remove(n) => {
            let p = pick(n);
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        JsonEdit::DuplicateElement(n) => {
            if let Some(Value::Array(a)) = doc.pointer_mut(&pick(n)) {
                if let Some(first) = a.first().cloned() {
                    a.push(first);
                }
            }
        }
        JsonEdit::AddField(n, v) => {
            if let Some(Value::Object(m)) = doc.pointer_mut(&pick(n)) {
                m.insert("extra".into(), values[v.index(values.len())].clone());
            }
        }
    }
}

fn apply(data: &mut Vec<u8>, m: &Mutation, seeds: &[Vec<u8>], focus: usize) {
    let len = data.len();
    match m {
        Mutation::FlipBit(p, bit) if len > 0 => data[p.get(len, focus)] ^= 1 << bit,
        Mutation::SetByte(p, b) if len > 0 => data[p.get(len, focus)] = *b,
        Mutation::Integer(p, v, width) => {
            let bytes = INTERESTING[v.index(INTERESTING.len())].to_le_bytes();
            let at = p.get(len, focus);
            let end = (at + usize::from(*width)).min(len);
            data[at..end].copy_from_slice(&bytes[..end - at]);
        }
        Mutation::Insert(p, t) => {
            let at = p.get(len + 1, focus);
            data.splice(at..at, t.iter().copied());
        }
        Mutation::Delete(p, n) if len > 0 => {
            let at = p.get(len, focus);
            data.drain(at..(at + n).min(len));
        }
        Mutation::Truncate(p) => data.truncate(p.get(len, focus)),
        Mutation::Duplicate(p, n) if len > 0 => {
            let at = p.get(len, focus);
            let chunk = data[at..(at + n).min(len)].to_vec();
            data.splice(at..at, chunk);
        }
        Mutation::Splice(at, donor, from, n) => {
            let donor = &seeds[donor.index(seeds.len())];
            let from = from.get(donor.len(), focus);
            let chunk = &donor[from..(from + n).min(donor.len())];
            let at = at.get(len, focus);
            let end = (at + chunk.len()).min(len);
            data.splice(at..end, chunk.iter().copied());
        }
        _ => {}
    }
}

fn build(r: &Recipe, seeds: &[Vec<u8>], focus: usize, values: &[Value]) -> Vec<u8> {
    let (mut data, muts) = match r {
        Recipe::Raw(bytes) => return bytes.clone(),
        Recipe::Mutated(s, muts) => (seeds[*s].clone(), muts.as_slice()),
        Recipe::Json(s, edits, muts) => match serde_json::from_slice::<Value>(&seeds[*s]) {
            Ok(mut doc) => {
                for e in edits {
                    edit_json(&mut doc, e, values);
                }
                let data = serde_json::to_vec(&doc).expect("edited JSON serializes");
                (data, muts.as_slice())
            }
            Err(_) => (seeds[*s].clone(), muts.as_slice()),
        },
    };
    for m in muts {
        apply(&mut data, m, seeds, focus);
    }
    data
}

fn show(data: &[u8]) -> String {
    const MAX: usize = 2048;
    let shown: String = data[..data.len().min(MAX)].escape_ascii().to_string();
    if data.len() > MAX {
        format!("{} bytes, first {MAX}: b\"{shown}\"", data.len())
    } else {
        format!("b\"{shown}\"")
    }
}

fn cases(default: u32) -> u32 {
    proofmesh_ambient::env::parse("PROPTEST_CASES").unwrap_or(default)
}

/// Run target `name` on its seeds, then on `n` generated inputs.
fn smoke(name: &str, n: u32) {
    let body: Body = TARGETS
        .iter()
        .find(|(t, _)| *t == name)
        .unwrap_or_else(|| panic!("no target {name}"))
        .1;
    let seeds = Arc::new(seeds::for_target(name));
    assert!(!seeds.is_empty(), "target {name} has no seeds");
    for seed in seeds.iter() {
        body(seed);
    }
    let focus = if name == "gguf_load" {
        seeds::GGUF_HEADER_FOCUS
    } else {
        usize::MAX
    };
    let mut config = Config {
        cases: cases(n),
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(0x7072_6f6f_666d_6573);
    }
    let json = serde_json::from_slice::<Value>(&seeds[0]).is_ok_and(|v| v.is_object());
    let values = Arc::new(json_values());
    let mut runner = TestRunner::new(config);
    let (s, v) = (Arc::clone(&seeds), Arc::clone(&values));
    let result = runner.run(&recipe(seeds.len(), json), move |r| {
        body(&build(&r, &s, focus, &v));
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, r)) => panic!(
            "fuzz target {name} panicked: {why}\nrecipe (seeds::for_target({name:?})): {r:?}\ninput: {}",
            show(&build(&r, &seeds, focus, &values))
        ),
        Err(e) => panic!("fuzz target {name}: {e}"),
    }
}

#[test]
fn receipt_json() {
    smoke("receipt_json", 4000);
}

#[test]
fn public_key() {
    smoke("public_key", 4000);
}

#[test]
fn signature() {
    smoke("signature", 4000);
}

#[test]
fn digest() {
    smoke("digest", 4000);
}

#[test]
fn provider_msg() {
    smoke("provider_msg", 5000);
}

#[test]
fn coordinator_msg() {
    smoke("coordinator_msg", 5000);
}

#[test]
fn chat_request() {
    smoke("chat_request", 6000);
}

#[test]
fn zk_infer_request() {
    smoke("zk_infer_request", 4000);
}

#[test]
fn zk_proof_bytes() {
    smoke("zk_proof_bytes", 1500);
}

#[test]
fn zk_vk_bytes() {
    smoke("zk_vk_bytes", 800);
}

#[test]
fn zk_model_file() {
    smoke("zk_model_file", 3000);
}

#[test]
fn zk_float_model_file() {
    smoke("zk_float_model_file", 3000);
}

#[test]
fn zk_bundle_json() {
    smoke("zk_bundle_json", 2000);
}

#[test]
fn zk_registry_json() {
    smoke("zk_registry_json", 2000);
}

#[test]
fn api_key() {
    smoke("api_key", 4000);
}

#[test]
fn gguf_load() {
    smoke("gguf_load", 2000);
}

#[test]
fn attest_intel_quote() {
    smoke("attest_intel_quote", 1500);
}

#[test]
fn attest_intel_collateral() {
    smoke("attest_intel_collateral", 1500);
}

#[test]
fn attest_snp_report() {
    smoke("attest_snp_report", 1500);
}

#[test]
fn attest_nvidia_evidence() {
    smoke("attest_nvidia_evidence", 1500);
}

#[test]
fn attest_nvidia_json() {
    smoke("attest_nvidia_json", 1500);
}

#[test]
fn attest_bundle_json() {
    smoke("attest_bundle_json", 1500);
}

#[test]
fn attest_cert_chain_pem() {
    smoke("attest_cert_chain_pem", 1500);
}

/// Every target in `TARGETS` has a smoke test above and seeds.
#[test]
fn every_target_is_smoked() {
    let src = include_str!("smoke.rs");
    for (name, _) in TARGETS {
        assert!(
            src.contains(&format!("smoke(\"{name}\", ")),
            "target {name} has no smoke test"
        );
    }
}
