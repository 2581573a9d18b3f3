//! The core's groups of settings, one per service, with their keys and defaults.

use std::path::PathBuf;

use super::values::{ContinueMode, GuideMode, LlmProvider, Secret};
use crate::error::Language;

/// The LLM API used when none is named: DeepSeek.
pub const DEFAULT_LLM_BASE_URL: &str = "https://api.deepseek.com";

crate::settings_group! {
    /// The database.
    pub struct DatabaseSettings {
        /// `sqlite://path` (created if missing) or `postgres://…`.
        url ("database_url"): String = "sqlite://refbook.db".to_owned();
    }
}

crate::settings_group! {
    /// Redis shared by several instances.
    pub struct ClusterSettings {
        /// Redis shared by several instances (`redis://127.0.0.1:6379/0`): live replies,
        /// stop and revocation across instances, shared rate limits. Unset: one process
        /// needs nothing but its database.
        url ("redis_url"): Option<Secret> = None;
        /// The start of every Redis key and channel of this deployment.
        prefix ("redis_prefix"): String = "refbook:".to_owned();
    }
}

crate::settings_group! {
    /// Accounts: tokens and their lifetimes.
    pub struct AccountSettings {
        /// HS256 secret for access tokens; unset: generated once and kept in the database.
        jwt_secret ("jwt_secret"): Option<Secret> = None;
        /// Access token lifetime in seconds.
        access_ttl_secs ("access_ttl_secs"): u64 = 7200;
        /// Refresh token lifetime in seconds.
        refresh_ttl_secs ("refresh_ttl_secs"): u64 = 604_800;
        /// Seconds after its rotation during which a refresh token presented again gets a
        /// new pair in the same session (two tabs, a retried request) instead of ending it.
        refresh_reuse_grace_secs ("refresh_reuse_grace_secs"): u64 = 10;
        /// Seconds an authenticated token or API key is remembered, so most requests skip
        /// the database (0: never). Revocations on this instance apply at once; those made
        /// on another instance once this passes (at once with Redis).
        auth_cache_secs ("auth_cache_secs"): u64 = 5;
    }
}

crate::settings_group! {
    /// WeChat mini-program login.
    pub struct WechatSettings {
        /// WeChat mini-program app id; unset: WeChat login answers 503.
        appid ("wechat_appid"): Option<String> = None;
        /// WeChat mini-program app secret.
        secret ("wechat_secret"): Option<Secret> = None;
        /// Base URL of the WeChat API.
        base_url ("wechat_base_url"): String = "https://api.weixin.qq.com".to_owned();
    }
}

crate::settings_group! {
    /// The model: which kind answers, and the OpenAI-compatible API.
    pub struct LlmSettings {
        /// Which model answers: `openai` (any OpenAI-compatible API), `local` (a GGUF model
        /// run in this process) or `off`; unset: `openai` when an API key or a base URL is
        /// set, else `local` in a build that has the local model, else `off`.
        provider ("llm_provider"): Option<LlmProvider> = None;
        /// Base URL of the OpenAI-compatible LLM API.
        base_url ("llm_base_url"): String = DEFAULT_LLM_BASE_URL.to_owned();
        /// API key of the LLM (servers on your own machine, such as Ollama or llama.cpp,
        /// may need none: set `llm_base_url` alone).
        api_key ("llm_api_key"): Option<Secret> = None;
        /// Model name sent to the LLM.
        model ("llm_model"): String = "deepseek-reasoner".to_owned();
        /// Seconds to wait for the LLM's response headers.
        connect_timeout_secs ("llm_connect_timeout_secs"): u64 = 15;
        /// Seconds to wait for the LLM's first data (keep-alive comments do not count).
        first_data_timeout_secs ("llm_first_data_timeout_secs"): u64 = 180;
        /// Seconds of silence (real data only) after which a reply counts as failed.
        idle_timeout_secs ("llm_idle_timeout_secs"): u64 = 60;
        /// The model's context window in tokens (for llama.cpp: its `-c` divided by `-np`,
        /// the context of one slot). The prompt gets this minus `llm_max_tokens`.
        context_tokens ("llm_context_tokens"): u64 = 16_384;
        /// The longest reply in tokens, reasoning included (sent as `max_tokens`).
        max_tokens ("llm_max_tokens"): u64 = 8192;
        /// Largest reply in bytes (answer and reasoning); a reply reaching it ends as
        /// `partial` with finish reason `length`.
        max_reply_bytes ("llm_max_reply_bytes"): usize = 1024 * 1024;
        /// How the API is asked to continue an answer a client sent unfinished: `prefix`
        /// (DeepSeek's beta, llama.cpp), `instruction` (any API), or `auto` (`prefix` for
        /// a base URL ending in `/beta`, else `instruction`).
        continuation ("llm_continuation"): ContinueMode = ContinueMode::Auto;
        /// Whether an OpenAI face client's `tools`, `tool_choice`, `parallel_tool_calls`,
        /// `response_format` and tool messages are passed to the API as sent (the book's
        /// prompt still in front) and the model's tool calls returned; off (or with the
        /// local model), requests that demand them are refused.
        passthrough_tools ("llm_passthrough_tools"): bool = true;
    }
}

crate::settings_group! {
    /// The model run in this process (`llm_provider = local`).
    pub struct LocalModelSettings {
        /// The local model: a GGUF file's path, or a model-hub file
        /// (`hf:OWNER/REPO/FILE.gguf`, or an `https://` URL) downloaded once into
        /// `local_model_cache`; unset: Qwen2.5-0.5B-Instruct (Q4_K_M) from Hugging Face.
        model ("local_model"): Option<String> = None;
        /// Where downloaded models are kept; unset: `refbook/models` in the user's cache
        /// folder (`~/.cache` on Linux).
        cache ("local_model_cache"): Option<PathBuf> = None;
        /// The Hugging Face endpoint `hf:` models come from (a mirror such as
        /// `https://hf-mirror.com` where huggingface.co is slow or blocked).
        hf_endpoint ("hf_endpoint"): String = "https://huggingface.co".to_owned();
        /// CPU threads the local model uses (0: every core).
        threads ("local_threads"): usize = 0;
        /// The local model's context window in tokens (prompt and reply).
        context_tokens ("local_context_tokens"): u64 = 4096;
        /// The longest reply of the local model, in tokens.
        max_tokens ("local_max_tokens"): u64 = 512;
        /// Memory for the local model's keys and values, in MB: the prefix cache's recent
        /// prompts and the answer in progress together; 0 keeps no prompts.
        cache_mb ("local_cache_mb"): u64 = 256;
        /// The longest a question waits for the local model before it is answered `503
        /// SERVER_BUSY` (with `Retry-After`), in seconds.
        queue_timeout_secs ("local_queue_timeout_secs"): u64 = 30;
    }
}

crate::settings_group! {
    /// Book sources, the lookup chain and covers.
    pub struct BookSettings {
        /// Book sources in lookup order.
        sources ("book_sources"): Vec<String> =
            vec!["douban".into(), "openlibrary".into(), "googlebooks".into()];
        /// Base URL of a Douban v2-compatible service; unset: the source is skipped.
        douban_base_url ("douban_base_url"): Option<String> = None;
        /// API key for the Douban-compatible service.
        douban_apikey ("douban_apikey"): Option<Secret> = None;
        /// Base URL of Open Library.
        openlibrary_base_url ("openlibrary_base_url"): String =
            "https://openlibrary.org".to_owned();
        /// Base URL of Open Library's cover images.
        openlibrary_covers_url ("openlibrary_covers_url"): String =
            "https://covers.openlibrary.org".to_owned();
        /// Base URL of Google Books.
        googlebooks_base_url ("googlebooks_base_url"): String =
            "https://www.googleapis.com".to_owned();
        /// Google Books API key (optional).
        googlebooks_api_key ("googlebooks_api_key"): Option<Secret> = None;
        /// How many days a stored book counts as fresh.
        ttl_days ("book_ttl_days"): u64 = 30;
        /// Seconds one book source may take before it counts as failed.
        source_timeout_secs ("book_source_timeout_secs"): u64 = 8;
        /// Seconds a book no source has is remembered as missing (0: not remembered).
        miss_ttl_secs ("book_miss_ttl_secs"): u64 = 600;
        /// Hosts the cover proxy may fetch from (`*.example.com` for subdomains); empty:
        /// the known sources' image hosts.
        cover_hosts ("cover_hosts"): Vec<String> = Vec::new();
        /// Serve covers through `/api/books/{isbn}/cover/` (and point `cover_url` there).
        cover_proxy ("cover_proxy"): bool = true;
        /// Largest cover image kept, in bytes.
        cover_max_bytes ("cover_max_bytes"): usize = 2 * 1024 * 1024;
        /// Largest book text file read, in bytes.
        text_max_bytes ("book_text_max_bytes"): usize = 50 * 1024 * 1024;
        /// Texts of their own one reader may keep.
        texts_per_user ("book_texts_per_user"): usize = 20;
        /// Memory for the search indexes of books' texts kept loaded, in MiB (least
        /// recently searched dropped first).
        index_cache_mb ("book_index_cache_mb"): u64 = 256;
        /// The sentence embedder that searches books' texts by meaning: a folder holding a
        /// sentence-transformers model (`config.json`, `tokenizer.json`,
        /// `model.safetensors`), a hub model `OWNER/REPO[@REVISION]` downloaded once into
        /// the model cache, or `off` (keywords only); unset: BAAI/bge-small-zh-v1.5 in a
        /// build with the local model, else `off`.
        embed_model ("embed_model"): Option<String> = None;
        /// Each book's guide (深度解析: a summary of every section, then of the book), built
        /// in the background with the configured model once its text is ready: `auto` or
        /// `off`.
        guide ("guide"): GuideMode = GuideMode::Auto;
        /// The most tokens (estimated, prompts and summaries) one book's guide may spend.
        guide_token_budget ("guide_token_budget"): u64 = 200_000;
    }
}

crate::settings_group! {
    /// Conversations, replies and their limits.
    pub struct ChatSettings {
        /// Daily token quota per user; 0 = unlimited.
        daily_token_quota ("daily_token_quota"): u64 = 0;
        /// Longest message content in characters.
        max_message_chars ("max_message_chars"): usize = 8000;
        /// Most entries in a stateless chat's `messages` array.
        max_messages ("max_messages"): usize = 50;
        /// Concurrent generations per user.
        max_concurrent_generations ("max_concurrent_generations"): usize = 2;
        /// Concurrent generations in this process, all users together; over it questions
        /// are answered `503 SERVER_BUSY` with `Retry-After`.
        max_generations ("max_generations"): usize = 256;
        /// Seconds a reply's owner holds its claim without renewing it; a process that
        /// died mid-reply has its replies settled as `partial` once this has passed.
        reply_lease_secs ("reply_lease_secs"): u64 = 30;
        /// Seconds the final save of a reply is retried while the database is away before
        /// the client is told it could not be stored.
        reply_save_timeout_secs ("reply_save_timeout_secs"): u64 = 120;
    }
}

crate::settings_group! {
    /// What every service shares.
    pub struct GeneralSettings {
        /// Default language of messages (`zh` or `en`); requests may prefer English.
        language ("language"): Language = Language::Zh;
        /// Public base URL of the server (`https://api.example.com`), for absolute links;
        /// unset: links are paths (`/api/…`) or built from the request's `Host`.
        public_url ("public_url"): Option<String> = None;
    }
}
