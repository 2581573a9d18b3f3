use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("refbook-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("refbook.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn defaults_match_the_contract() {
    let c = Config::load(None, env(&[]), &[]).unwrap();
    assert_eq!(c.database.url, "sqlite://refbook.db");
    assert_eq!(
        (c.accounts.access_ttl_secs, c.accounts.refresh_ttl_secs),
        (7200, 604_800)
    );
    assert_eq!(c.books.sources, ["douban", "openlibrary", "googlebooks"]);
    assert_eq!(c.chat.max_concurrent_generations, 2);
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let file = temp_file(
        "layers",
        "access_ttl_secs = 60\nllm_model = \"from-file\"\nbook_sources = [\"openlibrary\"]\n\
         max_messages = 7\n",
    );
    let c = Config::load(
        Some(&file),
        env(&[
            ("REFBOOK_LLM_MODEL", "from-env"),
            ("REFBOOK_MAX_MESSAGES", "8"),
        ]),
        &[("max_messages", "9".to_owned())],
    )
    .unwrap();
    assert_eq!(c.accounts.access_ttl_secs, 60);
    assert_eq!(c.llm.model, "from-env");
    assert_eq!(c.books.sources, ["openlibrary"]);
    assert_eq!(c.chat.max_messages, 9);
}

#[test]
fn every_key_belongs_to_exactly_one_group() {
    let config = Config::default();
    let keys = config.keys();
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a key is in two groups");
    let mut probe = Config::default();
    for key in [
        "database_url",
        "redis_prefix",
        "llm_model",
        "hf_endpoint",
        "language",
    ] {
        assert!(keys.contains(&key), "{key}");
    }
    assert!(probe.set("local_threads", "3").unwrap());
    assert_eq!(probe.local.threads, 3);
    assert!(
        !probe.set("bind", "127.0.0.1:1").unwrap(),
        "the server's, not the core's"
    );
}

#[test]
fn a_file_key_no_group_owns_is_refused_unless_another_group_is_loaded_beside() {
    crate::settings_group! {
        /// A front end's own settings.
        struct FrontEnd {
            /// Where it listens.
            bind ("bind"): String = "127.0.0.1:8080".to_owned();
        }
    }
    let file = temp_file("unknown", "bind = \"0.0.0.0:9\"\nllm_model = \"m\"\n");
    let err = Config::load(Some(&file), env(&[]), &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "bind"),
        "{err}"
    );

    let layers = Layers::read(Some(&file), env(&[("REFBOOK_BIND", "0.0.0.0:10")]), &[]).unwrap();
    let (mut core, mut front) = (Config::default(), FrontEnd::default());
    layers.fill(&mut [&mut core, &mut front]).unwrap();
    assert_eq!(
        front.bind, "0.0.0.0:10",
        "the environment wins over the file"
    );
    assert_eq!(core.llm.model, "m");
    let mut alone = Config::default();
    assert_eq!(
        layers.fill_ignoring_unknown(&mut [&mut alone]).unwrap(),
        ["bind"]
    );
    assert_eq!(alone.llm.model, "m");
}

#[test]
fn a_bad_value_names_the_variable_without_echoing_it() {
    let err = Config::load(None, env(&[("REFBOOK_ACCESS_TTL_SECS", "two hours")]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("REFBOOK_ACCESS_TTL_SECS"), "{err}");
    assert!(!err.contains("two hours"), "{err}");
    let err = Config::load(None, env(&[("REFBOOK_JWT_SECRET", "short")]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("REFBOOK_JWT_SECRET"), "{err}");
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Config::load(None, env(&[("REFBOOK_LLM_API_KEY", "sk-very-secret")]), &[]).unwrap();
    assert!(!format!("{c:?}").contains("sk-very-secret"));
}

#[test]
fn the_provider_follows_what_is_set() {
    let provider = |pairs: &[(&str, &str)]| Config::load(None, env(pairs), &[]).unwrap().provider();
    assert_eq!(
        provider(&[("REFBOOK_LLM_API_KEY", "sk-x")]),
        LlmProvider::OpenAi
    );
    // A server of one's own (Ollama, llama.cpp) needs no key.
    assert_eq!(
        provider(&[("REFBOOK_LLM_BASE_URL", "http://127.0.0.1:11434")]),
        LlmProvider::OpenAi
    );
    let nothing = if cfg!(feature = "local-model") {
        LlmProvider::Local
    } else {
        LlmProvider::Off
    };
    assert_eq!(provider(&[]), nothing);
    // Named, it wins over a key.
    assert_eq!(
        provider(&[
            ("REFBOOK_LLM_API_KEY", "sk-x"),
            ("REFBOOK_LLM_PROVIDER", "off")
        ]),
        LlmProvider::Off
    );
}
