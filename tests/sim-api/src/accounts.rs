//! CloudPe accounts as the simulator stores and serves them, and ready-made populations.

use serde::{Deserialize, Serialize};

/// The `group` object of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The group's name, e.g. `default`.
    pub name: String,
}

/// One CloudPe account, in the JSON shape of a `getaccounts` element (null fields omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The CloudPe user id.
    pub uid: u64,
    /// The login email.
    pub email: String,
    /// 1 active, 2 inactive, 3 being destroyed, 4 deleted; any other value is kept as is.
    pub status: i64,
    #[serde(rename = "isEnabled", skip_serializing_if = "Option::is_none", default)]
    /// `false` when the login is locked; `None` leaves the field out of the JSON.
    pub is_enabled: Option<bool>,
    /// The group name, served as `{"name": ...}`.
    #[serde(with = "group_name")]
    pub group: String,
    /// `yyyy-MM-dd HH:mm:ss`.
    #[serde(rename = "createdOn")]
    pub created_on: String,
    /// Account balance (clients ignore it).
    #[serde(default)]
    pub balance: f64,
}

mod group_name {
    use super::Group;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(name: &str, s: S) -> Result<S::Ok, S::Error> {
        Group { name: name.to_string() }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Group::deserialize(d)?.name)
    }
}

impl Account {
    /// An enabled account in group `default` with a made-up email.
    pub fn new(uid: u64, status: i64) -> Account {
        Account {
            uid,
            email: format!("user{uid}@example.com"),
            status,
            is_enabled: Some(true),
            group: "default".to_string(),
            created_on: "2024-03-01 10:00:00".to_string(),
            balance: 0.0,
        }
    }

    /// The same account with its login locked (`isEnabled: false`).
    pub fn locked(mut self) -> Account {
        self.is_enabled = Some(false);
        self
    }
}

/// A deterministic mixed population of `count` accounts with uids from `first_uid`: mostly
/// active, with inactive (1 in 20), locked (1 in 20), being destroyed and deleted (1 in 50 each).
pub fn population(count: usize, first_uid: u64) -> Vec<Account> {
    (0..count)
        .map(|i| {
            let uid = first_uid + i as u64;
            match (i % 20, i % 50) {
                (0, _) => Account::new(uid, 2),
                (1, _) => Account::new(uid, 1).locked(),
                (_, 2) => Account::new(uid, 3),
                (_, 3) => Account::new(uid, 4),
                _ => Account::new(uid, 1),
            }
        })
        .collect()
}

/// A small readable population for the demo: every status, a locked login, an unknown status
/// value, and a decoy pair (12 and 120) for substring matching.
pub fn sample_accounts() -> Vec<Account> {
    let named = |uid: u64, status: i64, email: &str| Account { email: email.to_string(), ..Account::new(uid, status) };
    vec![
        named(12, 1, "alice@example.com"),
        named(120, 2, "decoy-bob@example.com"),
        named(13, 1, "carol@example.com").locked(),
        named(14, 3, "dave@example.com"),
        named(15, 4, "erin@example.com"),
        named(16, 2, "frank@example.com"),
        named(17, 9, "grace@example.com"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_omits_null_fields() {
        let mut a = Account::new(7, 1);
        a.is_enabled = None;
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["group"]["name"], "default");
        assert_eq!(v["createdOn"], "2024-03-01 10:00:00");
        assert!(v.get("isEnabled").is_none());
        let back: Account = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn population_is_deterministic_and_mixed() {
        let p = population(100, 1000);
        assert_eq!(p, population(100, 1000));
        assert_eq!(p[0].uid, 1000);
        for status in [1, 2, 3, 4] {
            assert!(p.iter().any(|a| a.status == status), "status {status}");
        }
        assert!(p.iter().any(|a| a.is_enabled == Some(false)));
    }
}
