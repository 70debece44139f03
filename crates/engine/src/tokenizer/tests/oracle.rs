//! The `tokenizers` crate as the oracle for the hand-written tokenizer: the
//! same GGUF metadata built into its `BPE` + `Digits` + `ByteLevel` pipeline
//! (what the engine itself used before `bpe.rs`), and ids compared on a
//! corpus of awkward strings and on random ones, for the tiny test model and
//! the real default model.

use std::sync::OnceLock;

use proptest::prelude::*;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::super::*;
use crate::gguf::GgufFile;

/// Both tokenizers of one GGUF file.
struct Pair {
    ours: GgufTokenizer,
    oracle: Tokenizer,
}

fn pair_of(path: &std::path::Path) -> Pair {
    let file = GgufFile::open(path).expect("open gguf");
    let md = file.metadata();
    let ours = GgufTokenizer::from_metadata(&md).expect("our tokenizer");
    let tokens = md.string_array("tokenizer.ggml.tokens").unwrap();
    let types = md.int_array("tokenizer.ggml.token_type").unwrap();
    let merges = parse_merges(&md.string_array("tokenizer.ggml.merges").unwrap()).unwrap();
    Pair {
        ours,
        oracle: oracle(&tokens, &types, merges),
    }
}

fn oracle(tokens: &[String], types: &[i64], merges: Vec<(String, String)>) -> Tokenizer {
    let mut vocab = Vocab::default();
    for (i, t) in tokens.iter().enumerate() {
        vocab.entry(t.clone()).or_insert(i as u32);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .unwrap();
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let pick = |ty: i64| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(types)
            .filter(|(_, &t)| t == ty)
            .map(|(s, _)| AddedToken::from(s.clone(), ty == TOKEN_TYPE_CONTROL))
            .collect()
    };
    tok.add_special_tokens(&pick(TOKEN_TYPE_CONTROL));
    tok.add_tokens(&pick(TOKEN_TYPE_USER_DEFINED));
    tok
}

fn tiny() -> &'static Pair {
    static P: OnceLock<(tempfile::TempDir, Pair)> = OnceLock::new();
    &P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        crate::testing::write_tiny_gguf(&path, 3).unwrap();
        let p = pair_of(&path);
        (dir, p)
    })
    .1
}

fn real() -> &'static Pair {
    static P: OnceLock<Pair> = OnceLock::new();
    P.get_or_init(|| pair_of(&crate::testing::require_default_model()))
}

fn check(p: &Pair, text: &str) {
    let want = p.oracle.encode(text, false).unwrap().get_ids().to_vec();
    let got = p.ours.encode(text).unwrap();
    assert_eq!(got, want, "ids of {text:?}");
    assert_eq!(
        p.ours.decode(&got).unwrap(),
        p.oracle.decode(&want, false).unwrap(),
        "text of {text:?}"
    );
}

const CORPUS: &[&str] = &[
    "",
    " ",
    "Hello, world!",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "  leading and trailing  ",
    "tabs\tand\n\nnewlines \n\t x",
    "it's we're they've I'm you'll he'd O'Neil 'quoted'",
    "1234567890 3.14159 -42 1e10 0x1F",
    "½ ² Ⅻ ٣ ௰",
    "naïve café résumé Ångström",
    "日本語のテキスト 中文 한국어",
    "emoji 🙂👍🏽 and ZWJ 👨‍👩‍👧",
    "combining e\u{301} and a\u{300}\u{302}",
    "<|im_end|><|im_end|>x<|im_start|>",
    "<|im_start <|im_end| |im_end|>",
    "\u{a0}non-breaking\u{2003}em space\u{3000}ideographic",
    "symbols !@#$%^&*()_+-=[]{};':\",./<>?`~",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "    def f(x):\n        return x * 2\n",
    "\r\n\r\nwindows\r\nlines",
];

#[test]
fn corpus_ids_equal_the_tokenizers_crate_on_the_tiny_model() {
    for text in CORPUS {
        check(tiny(), text);
    }
}

#[test]
fn corpus_ids_equal_the_tokenizers_crate_on_the_real_model() {
    for text in CORPUS {
        check(real(), text);
    }
    // A long, mixed document in one call.
    check(real(), &CORPUS.concat().repeat(3));
}

#[test]
fn token_ids_of_specials_and_plain_tokens_match() {
    let p = real();
    for t in [
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "Ġthe",
        "hello",
    ] {
        assert_eq!(p.ours.token_id(t), p.oracle.token_to_id(t), "{t}");
    }
    assert_eq!(p.ours.token_id("no-such-token-here"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_text_ids_equal_the_tokenizers_crate(text in "\\PC{0,48}") {
        check(tiny(), &text);
        check(real(), &text);
    }

    #[test]
    fn random_text_around_specials_matches(
        a in "[ a-z0-9\n'<|>_]{0,12}",
        b in "[ a-zA-Z\t'!]{0,12}",
    ) {
        check(real(), &format!("{a}<|im_start|>{b}<|im_end|>{a}{b}"));
    }
}
