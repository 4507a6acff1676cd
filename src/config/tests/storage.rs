//! `[storage]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn sizes_come_as_numbers_or_text() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.storage.min_free_bytes, None);
        assert_eq!(config.storage.max_bytes, None);
        jail.set_env("OGLOGSTREAM_STORAGE__MIN_FREE_BYTES", "64MiB");
        jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "1073741824");
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.storage.min_free_bytes, Some(64 << 20));
        assert_eq!(config.storage.max_bytes, Some(1 << 30));
        jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "lots");
        let error = load(Cli::default()).unwrap_err();
        assert!(error.contains("storage.max_bytes"), "{error}");
        Ok(())
    });
}

#[test]
fn global_retention_rules_come_from_the_file_and_name_a_bad_one() {
    let load_file = |contents: &str| {
        let mut result = Err(String::new());
        Jail::expect_with(|jail| {
            jail.create_file("rules.toml", contents)?;
            result = load(Cli {
                config: Some("rules.toml".into()),
                ..Cli::default()
            });
            Ok(())
        });
        result
    };
    let config = load_file(
        "[[retention.rules]]\nquery = \"level:debug\"\nkeep = \"3d\"\n\
         [[retention.rules]]\nquery = \"service:audit\"\nkeep = \"400d\"\n",
    )
    .unwrap();
    let rules: Vec<(&str, u64)> = config
        .retention_rules
        .iter()
        .map(|rule| (rule.text.as_str(), rule.keep.as_secs() / 86_400))
        .collect();
    assert_eq!(rules, [("level:debug", 3), ("service:audit", 400)]);
    for (contents, key) in [
        (
            "[[retention.rules]]\nquery = \"level:loud\"\nkeep = \"3d\"\n",
            "retention.rules[0].query",
        ),
        (
            "[[retention.rules]]\nquery = \"level:debug\"\nkeep = \"3d\"\n\
             [[retention.rules]]\nquery = \"service:x\"\nkeep = \"soon\"\n",
            "retention.rules[1].keep",
        ),
        (
            "[[retention.rules]]\nquery = \"level:debug\"\nkeep = \"0s\"\n",
            "retention.rules[0].keep",
        ),
    ] {
        let error = load_file(contents).unwrap_err();
        assert!(error.contains(key), "{contents}: {error}");
    }
}
