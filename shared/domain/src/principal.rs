//! Who is calling, as the verified token says, and what that lets them do.

use std::fmt;

/// The back office's roles. A token carries exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Validator,
    Supervisor,
    Finance,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Validator,
        Role::Supervisor,
        Role::Finance,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Validator => "validator",
            Role::Supervisor => "supervisor",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller: user id (`sub`), role and the client companies (tenants) they may
/// act for. Built only from verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    pub clients: Vec<String>,
}

impl Principal {
    /// The principal as the author of an audited change.
    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::new(self.user_id.clone(), self.role)
    }

    pub fn acts_for(&self, client_id: &str) -> bool {
        self.clients.iter().any(|c| c == client_id)
    }

    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    pub fn is_any(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_case_insensitively_and_only_known_ones() {
        assert_eq!(Role::parse("Validator"), Some(Role::Validator));
        assert_eq!(Role::parse(" agent "), Some(Role::Agent));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn tenancy() {
        let p = Principal {
            user_id: "u".into(),
            role: Role::Agent,
            clients: vec!["acme".into()],
        };
        assert!(p.acts_for("acme"));
        assert!(!p.acts_for("globex"));
        assert!(p.is(Role::Agent) && p.is_any(&[Role::Admin, Role::Agent]) && !p.is_any(&[Role::Admin]));
    }
}
