//! The examples run and do what their docs say.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn custom_seams_answers_from_its_own_source_and_model() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custom_seams"))
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("《小王子》 by 圣埃克苏佩里"), "{stdout}");
    assert!(
        stdout.contains("本质的东西，用眼睛是看不见的。"),
        "{stdout}"
    );
}
