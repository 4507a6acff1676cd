//! Which of the three roles a process runs (`--role`, `role`): read by the
//! configuration, reported by `/health`. Pure.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Process,
    Query,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Process => "process",
            Role::Query => "query",
        }
    }
}

/// Which roles this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub process: bool,
    pub query: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        ingest: true,
        process: true,
        query: true,
    };

    pub fn parse(text: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            process: false,
            query: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "process" => roles.process = true,
                "query" => roles.query = true,
                other => {
                    return Err(format!(
                        "unknown role {other:?}: use all, ingest, process, query or a comma list"
                    ));
                }
            }
        }
        if roles.list().is_empty() {
            return Err("no role given: use all, ingest, process, query or a comma list".into());
        }
        Ok(roles)
    }

    pub fn list(self) -> Vec<Role> {
        [
            (self.ingest, Role::Ingest),
            (self.process, Role::Process),
            (self.query, Role::Query),
        ]
        .into_iter()
        .filter_map(|(on, role)| on.then_some(role))
        .collect()
    }

    pub fn is_all(self) -> bool {
        self == Roles::ALL
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.list().into_iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}
