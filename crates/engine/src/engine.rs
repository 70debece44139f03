//! The [`Engine`] handle: loads a GGUF model once (weights, tokenizer, thread
//! pool, identity digest) and exposes tokenization, chat rendering and
//! one-pass scoring. Generation lives in `generate.rs`.

use std::path::Path;

use crate::attention::KvCache;
use crate::chat::{render_chatml, require_markers, ChatMessage, IM_END};
use crate::forward::{Output, Want};
use crate::gguf::{llama_hparams, GgufFile, ModelInfo};
use crate::model::Model;
use crate::sampling::TopKLogits;
use crate::tokenizer::GgufTokenizer;
use crate::{sha256_file, EngineError};

/// Engine construction options.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Worker threads for the engine's own kernels (attention, norms, float
    /// matmuls); `None` = rayon's default. candle's quantized matmul kernels
    /// run on candle's process-wide pool, sized once per process by
    /// `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` / the physical core count.
    /// Results are bit-identical whatever either pool's size.
    pub threads: Option<usize>,
}

/// A loaded model, shareable across threads (`Arc<Engine>`); every request
/// gets its own KV cache, so concurrent calls are independent.
pub struct Engine {
    pub(crate) model: Model,
    pub(crate) tokenizer: GgufTokenizer,
    pub(crate) pool: rayon::ThreadPool,
    /// Token ids that end generation (EOS and `<|im_end|>`).
    pub(crate) stop_ids: Vec<u32>,
    digest: String,
    name: String,
    info: ModelInfo,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Load a llama-family GGUF model.
    pub fn load(path: &Path, opts: EngineOptions) -> Result<Engine, EngineError> {
        let digest = format!("sha256:{}", sha256_file(path)?);
        let mut file = GgufFile::open(path)?;
        let md = file.metadata();
        let hp = llama_hparams(&md)?;
        let tokenizer = GgufTokenizer::from_metadata(&md)?;
        let name = match md.get("general.name") {
            Some(_) => md.string("general.name")?.to_string(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        // The tokenizer arrays are the bulk of the metadata: free them before
        // the weights arrive so the two never add up in peak RSS.
        file.release_metadata();
        crate::heap::trim();
        let model = Model::load(&mut file, hp)?;
        if tokenizer.vocab_size() != model.vocab_size {
            return Err(EngineError::InvalidMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!(
                    "{} tokens but token_embd.weight has {} rows",
                    tokenizer.vocab_size(),
                    model.vocab_size
                ),
            });
        }
        let mut stop_ids: Vec<u32> = tokenizer.eos_id.into_iter().collect();
        stop_ids.extend(
            tokenizer
                .token_id(IM_END)
                .filter(|id| !stop_ids.contains(id)),
        );
        let threads = opts.threads.filter(|&t| t > 0);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .thread_name(|i| format!("pm-engine-{i}"))
            .build()
            .map_err(|e| EngineError::ThreadPool {
                threads: threads.unwrap_or(0),
                reason: e.to_string(),
            })?;
        let hp = &model.hp;
        let info = ModelInfo {
            arch: "llama".into(),
            n_layer: hp.n_layer,
            n_embd: hp.n_embd,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            vocab_size: model.vocab_size,
            context_length: hp.context_length,
            file_size_bytes: file.file_size(),
            n_ff: hp.n_ff,
        };
        tracing::debug!(%name, %digest, threads = pool.current_num_threads(), "model loaded");
        Ok(Engine {
            model,
            tokenizer,
            pool,
            stop_ids,
            digest,
            name,
            info,
        })
    }

    /// `"sha256:<hex>"` of the GGUF file: the model's identity.
    pub fn model_digest(&self) -> &str {
        &self.digest
    }

    /// `general.name` from the GGUF, else the file stem.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Model dimensions and file size.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Worker threads of the engine's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Longest prompt + completion the engine will process.
    pub fn max_sequence_len(&self) -> usize {
        self.model.max_positions()
    }

    /// `tokenizer.ggml.bos_token_id`, if the model declares one (never added
    /// automatically by [`Engine::encode`]).
    pub fn bos_token_id(&self) -> Option<u32> {
        self.tokenizer.bos_id
    }

    /// Token ids that end generation (EOS, and `<|im_end|>` when present).
    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Tokenize text. Special tokens written literally (e.g. `<|im_start|>`)
    /// map to their single id; no BOS is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.tokenizer.encode(text)
    }

    /// Detokenize; special tokens are rendered, unknown ids are an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.tokenizer.decode(ids)
    }

    /// ChatML prompt ending with `<|im_start|>assistant\n`; no system message
    /// is added.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        require_markers(&self.tokenizer)?;
        render_chatml(messages)
    }

    /// Check ids and length for a sequence that will be run through the model.
    pub(crate) fn check_sequence(&self, tokens: &[u32]) -> Result<(), EngineError> {
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        self.tokenizer.check_ids(tokens)?;
        if tokens.len() > self.model.max_positions() {
            return Err(EngineError::ContextOverflow {
                tokens: tokens.len(),
                context_length: self.model.max_positions(),
            });
        }
        Ok(())
    }

    /// Run `tokens` through the model in ONE prefill pass and return the top-`k`
    /// logits at every position (entry `i` predicts token `i + 1`).
    pub fn prefill_top_k(&self, tokens: &[u32], k: usize) -> Result<Vec<TopKLogits>, EngineError> {
        self.prefill_top_k_from(tokens, 0, k)
    }

    /// [`Engine::prefill_top_k`] for positions `from..` only (entry `i`
    /// predicts token `from + i + 1`): what a verifier needs, since only the
    /// positions that predict completion tokens are checked (`from` = prompt
    /// length − 1). The other positions skip the output projection; the
    /// entries returned are bit-identical to `prefill_top_k(tokens, k)[from..]`.
    pub fn prefill_top_k_from(
        &self,
        tokens: &[u32],
        from: usize,
        k: usize,
    ) -> Result<Vec<TopKLogits>, EngineError> {
        self.check_sequence(tokens)?;
        let mut cache = self.model.new_cache();
        match self.run(tokens, &mut cache, Want::TopK { k, from })? {
            Output::TopK(t) => Ok(t),
            Output::Logits(_) => unreachable!("asked for top-k"),
        }
    }

    /// Full logits of every position of one prefill pass (`len * vocab`).
    /// Meant for tests and tools; memory grows with the sequence.
    #[doc(hidden)]
    pub fn prefill_logits(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, EngineError> {
        self.prefill_logits_from(tokens, 0)
    }

    /// [`Engine::prefill_logits`] for positions `from..` only (bit-identical
    /// to its entries `from..`), skipping the output projection elsewhere.
    #[doc(hidden)]
    pub fn prefill_logits_from(
        &self,
        tokens: &[u32],
        from: usize,
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        self.check_sequence(tokens)?;
        let mut cache = self.model.new_cache();
        match self.run(tokens, &mut cache, Want::AllLogits { from })? {
            Output::Logits(l) => Ok(l
                .chunks_exact(self.model.vocab_size)
                .map(<[f32]>::to_vec)
                .collect()),
            Output::TopK(_) => unreachable!("asked for logits"),
        }
    }

    /// One forward pass on the engine's threads.
    pub(crate) fn run(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: Want,
    ) -> Result<Output, EngineError> {
        let threads = self.threads();
        self.pool
            .install(|| self.model.run(tokens, cache, threads, want))
    }
}

#[allow(
    dead_code,
    reason = "a compile-time check: never called, it only has to type-check"
)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Engine>();
}
