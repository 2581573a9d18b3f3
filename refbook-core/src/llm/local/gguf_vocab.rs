//! What a GGUF file says about talking to its model, beyond the weights: the tokenizer
//! (a byte-level BPE rebuilt from `tokenizer.ggml.*`), the chat template
//! (`tokenizer.chat_template`, a Jinja text rendered with minijinja) and the tokens that
//! end a turn.

use candle_core::quantized::gguf_file;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::domain::Role;
use crate::llm::{ModelError, PromptMessage};

/// A model's tokenizer, chat template and end-of-turn tokens.
pub struct GgufVocab {
    tokenizer: Tokenizer,
    template: minijinja::Environment<'static>,
    /// Tokens after which the model's turn is over (`eos`, `<|im_end|>`, …).
    pub end_tokens: Vec<u32>,
}

fn broken(what: &str) -> ModelError {
    ModelError::Stream(format!("the model file has no usable {what}"))
}

fn strings(content: &gguf_file::Content, key: &str) -> Result<Vec<String>, ModelError> {
    let values = content
        .metadata
        .get(key)
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| broken(key))?;
    values
        .iter()
        .map(|v| v.to_string().cloned().map_err(|_| broken(key)))
        .collect()
}

/// How Qwen2 splits text before BPE (its `tokenizer.json`): every digit alone.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// How Llama 3 splits text before BPE: digits in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer the file's `tokenizer.ggml.pre` names (as llama.cpp reads it): the
/// model was trained on text split this way, so the BPE must see the same pieces.
fn pre_tokenizer(kind: Option<&str>) -> Result<PreTokenizerWrapper, ModelError> {
    let split = |pattern: &str| {
        Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map(PreTokenizerWrapper::Split)
        .map_err(|e| ModelError::Stream(format!("pre-tokenizer: {e}")))
    };
    let bytes = |with_gpt2_split| {
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, with_gpt2_split))
    };
    Ok(match kind {
        Some("qwen2") => {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![split(QWEN2_SPLIT)?, bytes(false)]))
        }
        Some("llama-bpe" | "llama3") => {
            PreTokenizerWrapper::Sequence(Sequence::new(vec![split(LLAMA3_SPLIT)?, bytes(false)]))
        }
        Some("smollm") => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            bytes(true),
        ])),
        // GPT-2's own split, which ByteLevel applies itself.
        _ => bytes(true),
    })
}

impl GgufVocab {
    /// Reads them from a GGUF file's metadata. Only byte-level BPE vocabularies
    /// (`tokenizer.ggml.model = gpt2`: SmolLM, Qwen, Llama 3, …) are supported.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] naming what the file lacks.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, ModelError> {
        let kind = content
            .metadata
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| broken("tokenizer.ggml.model"))?;
        if kind != "gpt2" {
            return Err(ModelError::Stream(format!(
                "tokenizer `{kind}` is not supported (byte-level BPE only)"
            )));
        }
        let tokens = strings(content, "tokenizer.ggml.tokens")?;
        let merges = strings(content, "tokenizer.ggml.merges")?
            .into_iter()
            .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
            .collect();
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| u32::try_from(i).ok().map(|i| (t.clone(), i)))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|_| broken("vocabulary"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        let pre = content
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok());
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre.map(String::as_str))?));
        tokenizer.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
        // Control tokens (`<|im_start|>`, …) must stay whole, never split into bytes.
        let token_types = content
            .metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok());
        let specials: Vec<AddedToken> = tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                let control = token_types
                    .and_then(|types| types.get(*i))
                    .and_then(|v| v.to_i32().ok())
                    .is_some_and(|kind| kind == 3);
                control || (t.starts_with("<|") && t.ends_with("|>"))
            })
            .map(|(_, t)| AddedToken::from(t.clone(), true))
            .collect();
        tokenizer.add_special_tokens(&specials);

        let template_text = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or_else(|| broken("chat template"))?;
        let mut template = minijinja::Environment::new();
        template
            .add_template_owned("chat", template_text)
            .map_err(|e| ModelError::Stream(format!("the chat template does not parse: {e}")))?;

        let mut end_tokens: Vec<u32> =
            ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
                .iter()
                .filter_map(|key| content.metadata.get(*key).and_then(|v| v.to_u32().ok()))
                .collect();
        for name in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>"] {
            if let Some(id) = tokenizer.token_to_id(name) {
                end_tokens.push(id);
            }
        }
        end_tokens.sort_unstable();
        end_tokens.dedup();
        Ok(Self {
            tokenizer,
            template,
            end_tokens,
        })
    }

    /// The prompt text for `messages`, ending where the assistant's turn begins — or,
    /// when the last message is the assistant's (an unfinished answer), ending with that
    /// answer's text inside its turn, so the model writes on from it.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the template fails to render.
    pub fn render(&self, messages: &[PromptMessage]) -> Result<String, ModelError> {
        let (asked, unfinished) = match messages.split_last() {
            Some((last, asked)) if last.role == Role::Assistant => {
                (asked, Some(last.content.as_str()))
            }
            _ => (messages, None),
        };
        let asked: Vec<minijinja::Value> = asked
            .iter()
            .map(|m| minijinja::context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let mut prompt = self
            .template
            .get_template("chat")
            .and_then(|t| {
                t.render(minijinja::context! { messages => asked, add_generation_prompt => true })
            })
            .map_err(|e| ModelError::Stream(format!("the chat template failed: {e}")))?;
        if let Some(unfinished) = unfinished {
            prompt.push_str(unfinished);
        }
        Ok(prompt)
    }

    /// The tokens of `text` (control tokens in it recognised).
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the tokenizer fails.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Stream(format!("tokenizer: {e}")))
    }

    /// The text of `tokens`, control tokens left out.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the tokenizer fails.
    pub fn decode(&self, tokens: &[u32]) -> Result<String, ModelError> {
        self.tokenizer
            .decode(tokens, true)
            .map_err(|e| ModelError::Stream(format!("tokenizer: {e}")))
    }

    /// The text of every token by id (control tokens: empty), for constrained sampling.
    ///
    /// # Errors
    ///
    /// [`ModelError::Stream`] when the tokenizer fails.
    pub fn token_texts(&self) -> Result<Vec<String>, ModelError> {
        let size = u32::try_from(self.tokenizer.get_vocab_size(true)).unwrap_or(u32::MAX);
        (0..size).map(|id| self.decode(&[id])).collect()
    }
}
