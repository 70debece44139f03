//! End-to-end tests on the tiny random-weight GGUF from `testing`: they
//! exercise the real loader, tokenizer, forward pass, sampling and streaming
//! in milliseconds, including the bit-exact prefill == incremental property.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use candle_core::quantized::gguf_file::Value;
use proofmesh_engine::testing::{write_tiny_gguf, write_tiny_gguf_with, TINY_VOCAB};
use proofmesh_engine::{
    logits_digest, sample_token, sha256_file, ChatMessage, Engine, EngineError, EngineOptions,
    FinishReason, GenerateRequest, Generation, SamplingParams, Session, TokenEvent, TopKLogits,
    PREFILL_CHUNK,
};

fn tiny_path() -> &'static PathBuf {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PATH
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tiny.gguf");
            write_tiny_gguf(&path, 7).unwrap();
            (dir, path)
        })
        .1
}

fn engine(threads: usize) -> Engine {
    Engine::load(
        tiny_path(),
        EngineOptions {
            threads: Some(threads),
        },
    )
    .unwrap()
}

fn shared() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| engine(2))
}

fn prompt(e: &Engine) -> Vec<u32> {
    let text = e
        .chat_prompt(&[ChatMessage::new("user", "the cat sat on 12 mats")])
        .unwrap();
    e.encode(&text).unwrap()
}

fn request(e: &Engine, temperature: f32, seed: u64, max_tokens: u32, k: usize) -> GenerateRequest {
    GenerateRequest {
        prompt_tokens: prompt(e),
        sampling: SamplingParams {
            temperature,
            top_p: 0.95,
            seed,
            max_tokens,
            stop: vec![],
            top_k_logits: k,
        },
    }
}

fn run(e: &Engine, req: &GenerateRequest) -> (Generation, Vec<TokenEvent>) {
    let mut events = Vec::new();
    let g = e
        .generate(req, &mut |ev| {
            events.push(ev.clone());
            ControlFlow::Continue(())
        })
        .unwrap();
    (g, events)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Rebuild a full logits vector from a top-k that covers the whole vocabulary.
fn full_from_topk(t: &TopKLogits) -> Vec<f32> {
    assert_eq!(t.ids.len(), TINY_VOCAB);
    let mut v = vec![f32::NAN; TINY_VOCAB];
    for (&id, &x) in t.ids.iter().zip(&t.values) {
        v[id as usize] = x;
    }
    v
}

#[test]
fn loads_with_expected_identity_and_shape() {
    let e = shared();
    assert_eq!(e.model_name(), "proofmesh-tiny-llama");
    assert_eq!(
        e.model_digest(),
        format!("sha256:{}", sha256_file(tiny_path()).unwrap())
    );
    let info = e.info();
    assert_eq!(info.arch, "llama");
    assert_eq!(
        (info.n_layer, info.n_embd, info.n_head, info.n_head_kv),
        (2, 64, 4, 2)
    );
    assert_eq!(info.vocab_size, TINY_VOCAB);
    assert_eq!(
        info.file_size_bytes,
        std::fs::metadata(tiny_path()).unwrap().len()
    );
    assert_eq!(e.threads(), 2);
    assert_eq!(e.stop_token_ids(), &[2]);
    assert_eq!(e.bos_token_id(), Some(1));
}

#[test]
fn same_seed_gives_same_file_and_different_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    write_tiny_gguf(&a, 1).unwrap();
    write_tiny_gguf(&b, 1).unwrap();
    write_tiny_gguf(&c, 2).unwrap();
    assert_eq!(sha256_file(&a).unwrap(), sha256_file(&b).unwrap());
    assert_ne!(sha256_file(&a).unwrap(), sha256_file(&c).unwrap());
}

#[test]
fn tokenizer_handles_specials_digits_and_prefix_space() {
    let e = shared();
    let ids = e.encode("<|im_start|>user\n<|im_end|>").unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(*ids.last().unwrap(), 2);
    // "1 2" is a merge, but digits are split before BPE.
    assert_eq!(e.encode("12").unwrap().len(), 2);
    // No prefix space: "the" is two tokens ("t", "he"), " the" is one.
    assert_eq!(e.encode("the").unwrap().len(), 2);
    assert_eq!(e.encode(" the").unwrap().len(), 1);
    assert_eq!(e.decode(&e.encode("the").unwrap()).unwrap(), "the");
    let err = e.decode(&[TINY_VOCAB as u32]).unwrap_err();
    assert!(matches!(err, EngineError::UnknownToken { id, .. } if id == TINY_VOCAB as u32));
}

proptest::proptest! {
    #[test]
    fn encode_decode_round_trips(text in "\\PC{0,40}") {
        let e = shared();
        let ids = e.encode(&text).unwrap();
        proptest::prop_assert_eq!(e.decode(&ids).unwrap(), text);
    }
}

/// The verification property: every logits vector seen during incremental
/// decoding equals, bit for bit, the same position of one prefill pass.
#[test]
fn generation_logits_equal_one_pass_prefill_bit_for_bit() {
    let reference = engine(1);
    let req = request(&reference, 1.0, 11, 40, TINY_VOCAB);
    let mut digests = Vec::new();
    for threads in [1, 2] {
        let e = engine(threads);
        let (g, _) = run(&e, &req);
        assert!(!g.completion_tokens.is_empty());
        let mut all = g.prompt_tokens.clone();
        all.extend(&g.completion_tokens);
        let prefill = e.prefill_logits(&all[..all.len() - 1]).unwrap();
        let p = g.prompt_tokens.len();
        for (i, t) in g.logits.iter().enumerate() {
            assert_eq!(
                bits(&full_from_topk(t)),
                bits(&prefill[p - 1 + i]),
                "threads {threads} position {i}"
            );
            // A verifier can recompute each sampled token from the logits.
            let s = &req.sampling;
            let again = sample_token(&full_from_topk(t), s.temperature, s.top_p, s.seed, i as u64);
            assert_eq!(again, g.completion_tokens[i]);
        }
        let top = e.prefill_top_k(&all[..all.len() - 1], TINY_VOCAB).unwrap();
        assert_eq!(logits_digest(&g.logits), logits_digest(&top[p - 1..]));
        digests.push(logits_digest(&g.logits));
    }
    assert_eq!(digests[0], digests[1], "thread count changed the logits");
}

#[test]
fn session_feeding_one_token_at_a_time_matches_prefill_everywhere() {
    let e = shared();
    let tokens = e
        .encode("in the end an answer is there 1234 <|im_end|>")
        .unwrap();
    let prefill = e.prefill_logits(&tokens).unwrap();
    let mut s = Session::new(e);
    for (i, &t) in tokens.iter().enumerate() {
        let l = s.feed(&[t]).unwrap();
        assert_eq!(bits(&l), bits(&prefill[i]), "position {i}");
    }
    // Mixed chunking: prefill 3, then 1, then the rest in one go.
    let mut s = Session::new(e);
    s.feed(&tokens[..3]).unwrap();
    s.feed(&tokens[3..4]).unwrap();
    let last = s.feed(&tokens[4..]).unwrap();
    assert_eq!(bits(&last), bits(prefill.last().unwrap()));
}

#[test]
fn prompts_longer_than_one_pass_are_chunked_without_changing_a_bit() {
    let e = shared();
    let n = 2 * PREFILL_CHUNK + 5;
    assert!(
        n < e.max_sequence_len(),
        "tiny context cannot cross two chunks"
    );
    let tokens: Vec<u32> = e
        .encode("the quick 12 fox ")
        .unwrap()
        .into_iter()
        .cycle()
        .take(n)
        .collect();
    let full = e.prefill_logits(&tokens).unwrap();
    assert_eq!(full.len(), n);
    let mut s = Session::new(e);
    for (i, &t) in tokens.iter().enumerate() {
        let l = s.feed(&[t]).unwrap();
        assert_eq!(bits(&l), bits(&full[i]), "position {i}");
    }
    for from in [PREFILL_CHUNK - 1, PREFILL_CHUNK, PREFILL_CHUNK + 1, n - 1] {
        let tail = e.prefill_logits_from(&tokens, from).unwrap();
        assert_eq!(tail.len(), n - from, "from {from}");
        for (i, (a, b)) in tail.iter().zip(&full[from..]).enumerate() {
            assert_eq!(bits(a), bits(b), "from {from} row {i}");
        }
        let top = e.prefill_top_k_from(&tokens, from, 4).unwrap();
        let want: Vec<TopKLogits> = full[from..]
            .iter()
            .map(|l| TopKLogits::from_logits(l, 4))
            .collect();
        assert_eq!(top, want, "top-k from {from}");
    }
    // A session's last logits after one long feed equal the prefill's.
    let mut s = Session::new(e);
    assert_eq!(bits(&s.feed(&tokens).unwrap()), bits(&full[n - 1]));
    assert_eq!(s.len(), n);
}

#[test]
fn prefill_top_k_matches_full_logits() {
    let e = shared();
    let tokens = prompt(e);
    let full = e.prefill_logits(&tokens).unwrap();
    let top = e.prefill_top_k(&tokens, 5).unwrap();
    assert_eq!(top.len(), tokens.len());
    for (t, f) in top.iter().zip(&full) {
        assert_eq!(t, &TopKLogits::from_logits(f, 5));
        assert!(t.values.windows(2).all(|w| w[0] >= w[1]));
    }
    assert!(e
        .prefill_top_k(&tokens, 0)
        .unwrap()
        .iter()
        .all(|t| t.ids.is_empty()));
}

#[test]
fn logits_from_a_position_equal_the_tail_of_all_logits() {
    for threads in [1, 2] {
        let e = &engine(threads);
        let tokens = prompt(e);
        let full = e.prefill_logits(&tokens).unwrap();
        let top = e.prefill_top_k(&tokens, 5).unwrap();
        for from in [0, 1, tokens.len() - 1] {
            let tail = e.prefill_logits_from(&tokens, from).unwrap();
            assert_eq!(tail.len(), tokens.len() - from);
            for (i, (a, b)) in tail.iter().zip(&full[from..]).enumerate() {
                assert_eq!(bits(a), bits(b), "threads {threads} from {from} row {i}");
            }
            assert_eq!(e.prefill_top_k_from(&tokens, from, 5).unwrap(), top[from..]);
        }
        for bad in [tokens.len(), tokens.len() + 3] {
            assert!(matches!(
                e.prefill_top_k_from(&tokens, bad, 5),
                Err(EngineError::LogitsFrom { .. })
            ));
            assert!(matches!(
                e.prefill_logits_from(&tokens, bad),
                Err(EngineError::LogitsFrom { .. })
            ));
        }
    }
}

#[test]
fn same_seed_same_output_and_seeds_diverge() {
    let e = shared();
    let (a, _) = run(e, &request(e, 1.0, 5, 24, 0));
    let (b, _) = run(e, &request(e, 1.0, 5, 24, 0));
    assert_eq!(a.completion_tokens, b.completion_tokens);
    assert_eq!(a.text, b.text);
    let (c, _) = run(e, &request(e, 1.0, 6, 24, 0));
    assert_ne!(a.completion_tokens, c.completion_tokens);
}

#[test]
fn greedy_follows_argmax_and_ignores_seed() {
    let e = shared();
    let (a, _) = run(e, &request(e, 0.0, 1, 16, TINY_VOCAB));
    let (b, _) = run(e, &request(e, 0.0, 999, 16, TINY_VOCAB));
    assert_eq!(a.completion_tokens, b.completion_tokens);
    for (t, &tok) in a.logits.iter().zip(&a.completion_tokens) {
        assert_eq!(t.ids[0], tok, "greedy token is the top logit");
    }
}

#[test]
fn streamed_deltas_form_the_text_and_finish_reasons_are_consistent() {
    let e = shared();
    let (g, events) = run(e, &request(e, 1.0, 3, 30, 4));
    assert_eq!(events.len(), g.completion_tokens.len());
    assert_eq!(g.logits.len(), g.completion_tokens.len());
    assert!(g.logits.iter().all(|t| t.ids.len() == 4));
    for (i, ev) in events.iter().enumerate() {
        assert_eq!((ev.index, ev.token_id), (i, g.completion_tokens[i]));
    }
    assert_eq!(
        events
            .iter()
            .map(|e| e.text_delta.as_str())
            .collect::<String>(),
        g.text
    );
    match g.finish_reason {
        FinishReason::Length => assert_eq!(g.completion_tokens.len(), 30),
        FinishReason::Stop => assert!(e
            .stop_token_ids()
            .contains(g.completion_tokens.last().unwrap())),
        FinishReason::Cancelled => panic!("nothing cancelled"),
    }
    let without_eos: Vec<u32> = g
        .completion_tokens
        .iter()
        .copied()
        .filter(|t| !e.stop_token_ids().contains(t))
        .collect();
    assert_eq!(e.decode(&without_eos).unwrap(), g.text);
    assert!(g.prefill_ms >= 0.0 && g.decode_ms > 0.0);
}

#[test]
fn stop_string_cuts_text_and_ends_generation() {
    let e = shared();
    let base = request(e, 0.7, 21, 40, 0);
    let (g, _) = run(e, &base);
    let chars: Vec<char> = g.text.chars().collect();
    assert!(
        chars.len() >= 8,
        "need some text to pick a stop string from: {:?}",
        g.text
    );
    let stop: String = chars[4..6].iter().collect();
    let cut = &g.text[..g.text.find(&stop).unwrap()];
    let mut req = base.clone();
    req.sampling.stop = vec!["never-occurs-xyz".into(), stop.clone()];
    let (s, events) = run(e, &req);
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert_eq!(s.text, cut);
    assert_eq!(
        events
            .iter()
            .map(|e| e.text_delta.as_str())
            .collect::<String>(),
        cut
    );
    assert!(s.completion_tokens.len() <= g.completion_tokens.len());
    assert_eq!(
        s.completion_tokens[..],
        g.completion_tokens[..s.completion_tokens.len()]
    );
}

#[test]
fn callback_break_cancels() {
    let e = shared();
    let mut seen = 0;
    let mut deltas = String::new();
    let g = e
        .generate(&request(e, 1.0, 4, 50, 0), &mut |ev| {
            seen += 1;
            deltas.push_str(&ev.text_delta);
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert_eq!(g.completion_tokens.len(), 3);
    assert_eq!(g.text, deltas);
    assert_eq!(FinishReason::Cancelled.as_str(), "cancelled");
}

#[test]
fn eos_token_stops_generation_without_text() {
    // Make the greedy first token the EOS token, so generation must stop at once.
    let e = shared();
    let (g, _) = run(e, &request(e, 0.0, 0, 8, 0));
    let first = g.completion_tokens[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eos.gguf");
    write_tiny_gguf_with(
        &path,
        7,
        &[("tokenizer.ggml.eos_token_id", Value::U32(first))],
        &[],
    )
    .unwrap();
    let e2 = Engine::load(&path, EngineOptions::default()).unwrap();
    let (s, events) = run(&e2, &request(&e2, 0.0, 0, 8, 0));
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert_eq!(s.completion_tokens, vec![first]);
    assert_eq!(s.text, "");
    assert_eq!(events.len(), 1);
    assert_eq!(FinishReason::Stop.as_str(), "stop");
}

#[test]
fn max_tokens_zero_and_length_limits() {
    let e = shared();
    let (g, events) = run(e, &request(e, 0.0, 0, 0, 0));
    assert!(g.completion_tokens.is_empty() && events.is_empty());
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(FinishReason::Length.as_str(), "length");
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let e = shared();
    let mut req = request(e, 1.0, 0, 4, 0);
    req.prompt_tokens.push(TINY_VOCAB as u32 + 5);
    assert!(matches!(
        e.generate(&req, &mut |_| ControlFlow::Continue(())),
        Err(EngineError::UnknownToken { .. })
    ));
    req.prompt_tokens.clear();
    assert!(matches!(
        e.generate(&req, &mut |_| ControlFlow::Continue(())),
        Err(EngineError::EmptyPrompt)
    ));
    let mut req = request(e, -1.0, 0, 4, 0);
    assert!(matches!(
        e.generate(&req, &mut |_| ControlFlow::Continue(())),
        Err(EngineError::InvalidSampling { .. })
    ));
    req.sampling.temperature = 1.0;
    req.prompt_tokens = vec![5; e.max_sequence_len() + 1];
    assert!(matches!(
        e.generate(&req, &mut |_| ControlFlow::Continue(())),
        Err(EngineError::ContextOverflow { .. })
    ));
    assert!(matches!(
        e.prefill_top_k(&[], 3),
        Err(EngineError::EmptyPrompt)
    ));
    assert!(matches!(
        e.chat_prompt(&[ChatMessage::new("bad role", "x")]),
        Err(EngineError::InvalidChatMessage { .. })
    ));
}

#[test]
fn generation_runs_to_the_context_limit() {
    let e = shared();
    let mut req = request(e, 0.0, 0, 1000, 0);
    let max = e.max_sequence_len();
    req.prompt_tokens = e
        .encode("the ")
        .unwrap()
        .into_iter()
        .cycle()
        .take(max - 3)
        .collect();
    let (g, _) = run(e, &req);
    if g.finish_reason == FinishReason::Length {
        assert_eq!(
            g.completion_tokens.len(),
            4,
            "3 fed positions + 1 sampled token"
        );
    }
}

#[test]
fn engine_is_shareable_across_threads() {
    let e = Arc::new(engine(2));
    let req = request(&e, 1.0, 9, 12, 3);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (e, req) = (e.clone(), req.clone());
            std::thread::spawn(move || run(&e, &req).0)
        })
        .collect();
    let outs: Vec<Generation> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for o in &outs[1..] {
        assert_eq!(o.completion_tokens, outs[0].completion_tokens);
        assert_eq!(logits_digest(&o.logits), logits_digest(&outs[0].logits));
    }
}
