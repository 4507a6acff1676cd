//! `[auth]` and `[auth.oidc]` through the layers: secrets from the
//! environment (two levels deep), the roles table from the file, and a
//! refusal naming the key and its variable.

use super::load;
use crate::cli::Cli;
use crate::domain::principal::AccessRole;
use figment::Jail;

#[test]
fn sign_in_from_the_file_with_secrets_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "signin.toml",
            r#"
[auth.oidc]
issuer = "https://sso.example.com/realms/main"
client_id = "oglogstream"
redirect_url = "https://logs.example.com/auth/callback"
roles_claim = "realm_access.roles"
roles = { viewer = ["devs"], admin = ["platform"] }
"#,
        )?;
        jail.set_env(
            "OGLOGSTREAM_AUTH__SESSION_SECRET",
            "a-secret-from-the-environment-0123456789",
        );
        jail.set_env(
            "OGLOGSTREAM_AUTH__OIDC__CLIENT_SECRET",
            "client-secret-from-env",
        );
        jail.set_env("OGLOGSTREAM_AUTH__SESSION_TTL", "8h");
        let config = load(Cli {
            config: Some("signin.toml".into()),
            ..Cli::default()
        })
        .unwrap();
        let oidc = config.auth.oidc.clone().expect("sign-in on");
        assert_eq!(
            oidc.client_secret.as_ref().map(|s| s.expose()),
            Some("client-secret-from-env")
        );
        assert_eq!(oidc.roles_claim, "realm_access.roles");
        assert_eq!(
            oidc.roles[0],
            (AccessRole::Admin, vec!["platform".to_string()])
        );
        assert_eq!(config.auth.session_ttl.as_secs(), 8 * 3600);
        assert!(!config.summary().contains("client-secret-from-env"));
        assert!(
            config
                .summary()
                .contains("sign_in=https://sso.example.com/realms/main")
        );
        Ok(())
    });
}

#[test]
fn sign_in_without_a_session_secret_is_refused_naming_the_key() {
    Jail::expect_with(|jail| {
        jail.set_env("OGLOGSTREAM_AUTH__OIDC__ISSUER", "https://sso.example.com");
        jail.set_env("OGLOGSTREAM_AUTH__OIDC__CLIENT_ID", "oglogstream");
        jail.set_env(
            "OGLOGSTREAM_AUTH__OIDC__REDIRECT_URL",
            "https://logs.example.com/auth/callback",
        );
        jail.set_env("OGLOGSTREAM_AUTH__OIDC__ROLES", "{viewer=[\"devs\"]}");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("auth.session_secret")
                && error.contains("OGLOGSTREAM_AUTH__SESSION_SECRET"),
            "{error}"
        );
        Ok(())
    });
}
