//! The security page's HAProxy examples are paste-able: each ```haproxy
//! block, with its certificate paths pointed at files made here, passes
//! `haproxy -c`.

use crate::deployment::assert_haproxy_accepts;
use crate::support::certs::Pki;

fn haproxy_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line.trim()) {
            (None, "```haproxy") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn the_haproxy_examples_pass_haproxy_check() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md"))
        .expect("docs/security.md");
    let blocks = haproxy_blocks(&page);
    assert_eq!(blocks.len(), 2, "passthrough and re-encryption");
    let pki = Pki::new("Docs CA");
    let public = pki.server("public");
    // HAProxy's `crt` takes the chain and the key in one file.
    let combined = pki.dir().join("public-combined.pem");
    let text = std::fs::read_to_string(&public.cert).expect("chain")
        + &std::fs::read_to_string(&public.key).expect("key");
    std::fs::write(&combined, text).expect("combined");
    for (index, block) in blocks.iter().enumerate() {
        let config = block
            .replace("/etc/haproxy/oglogstream-ca.pem", &pki.ca_str())
            .replace(
                "/etc/haproxy/logs.example.com.pem",
                combined.to_str().expect("utf-8"),
            );
        assert!(
            !config.contains("/etc/haproxy/"),
            "an unmapped path:\n{config}"
        );
        let file = pki.dir().join(format!("haproxy-{index}.cfg"));
        std::fs::write(&file, config).expect("config");
        assert_haproxy_accepts(&file);
    }
}
