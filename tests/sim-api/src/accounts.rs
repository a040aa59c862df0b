//! CloudPe accounts as the simulator stores and serves them, and ready-made populations.

use std::collections::BTreeMap;

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

/// The accounts the API holds, by uid, with the uids in order beside them: a page of the whole
/// list (`startRow` 999,000 of a million) is then a slice, not a walk over every account before
/// it, which cost the simulator up to 25 ms a page and dominated a million-account benchmark.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    by_uid: BTreeMap<u64, Account>,
    /// The keys of `by_uid`, ascending.
    uids: Vec<u64>,
}

impl Accounts {
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    pub fn get(&self, uid: &u64) -> Option<&Account> {
        self.by_uid.get(uid)
    }

    /// The account of `uid`, to change (its uid excepted).
    pub fn get_mut(&mut self, uid: &u64) -> Option<&mut Account> {
        self.by_uid.get_mut(uid)
    }

    /// Adds or replaces the account of `uid`.
    pub fn insert(&mut self, uid: u64, account: Account) {
        if self.by_uid.insert(uid, account).is_none() {
            let at = self.uids.partition_point(|&u| u < uid);
            self.uids.insert(at, uid);
        }
    }

    pub fn remove(&mut self, uid: &u64) -> Option<Account> {
        let removed = self.by_uid.remove(uid)?;
        if let Ok(at) = self.uids.binary_search(uid) {
            self.uids.remove(at);
        }
        Some(removed)
    }

    /// Every account, by ascending uid.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Account> {
        self.by_uid.values()
    }

    /// At most `count` accounts from the `start`-th (0-based), by ascending uid.
    pub fn page(&self, start: usize, count: usize) -> impl Iterator<Item = &Account> {
        let start = start.min(self.uids.len());
        let end = start.saturating_add(count).min(self.uids.len());
        self.uids[start..end].iter().map(|uid| &self.by_uid[uid])
    }
}

impl FromIterator<(u64, Account)> for Accounts {
    fn from_iter<I: IntoIterator<Item = (u64, Account)>>(accounts: I) -> Self {
        let by_uid: BTreeMap<u64, Account> = accounts.into_iter().collect();
        let uids = by_uid.keys().copied().collect();
        Accounts { by_uid, uids }
    }
}

impl std::ops::Index<&u64> for Accounts {
    type Output = Account;

    fn index(&self, uid: &u64) -> &Account {
        &self.by_uid[uid]
    }
}

/// A deterministic mixed population of `count` accounts with uids from `first_uid`: mostly
/// active, with inactive (1 in 20), locked (1 in 20), being destroyed and deleted (1 in 50 each).
/// Emails are `user{uid}@example.com`, except two decoys in every hundred: the accounts at
/// positions 47 and 48 (of each hundred) hold `ann.user{U}@example.com.evil` and
/// `USER{U}@example.com.attacker`, where `U` is the uid at position 46: a case-insensitive
/// substring lookup of that user's email lists all three, and only one is an exact match.
pub fn population(count: usize, first_uid: u64) -> Vec<Account> {
    (0..count)
        .map(|i| {
            let uid = first_uid + i as u64;
            let mut account = match (i % 20, i % 50) {
                (0, _) => Account::new(uid, 2),
                (1, _) => Account::new(uid, 1).locked(),
                (_, 2) => Account::new(uid, 3),
                (_, 3) => Account::new(uid, 4),
                _ => Account::new(uid, 1),
            };
            match i % 100 {
                47 => account.email = decoys_of(&format!("user{}@example.com", uid - 1))[0].clone(),
                48 => account.email = decoys_of(&format!("user{}@example.com", uid - 2))[1].clone(),
                _ => {}
            }
            account
        })
        .collect()
}

/// The decoy emails of `email` the populations hold: a substring lookup of `email` finds them,
/// an exact (trimmed, case-insensitive) comparison does not.
pub fn decoys_of(email: &str) -> [String; 2] {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    [format!("ann.{local}@{domain}.evil"), format!("{}@{}.attacker", local.to_uppercase(), domain)]
}

/// A small readable population for the demo: every status, a locked login, an unknown status
/// value, a decoy pair (12 and 120) for uid substring matching, and `bob@x.io` (18) with two
/// decoys for email substring matching (`ann.bob@x.io.evil`, `BOB@x.io.attacker`).
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
        named(18, 1, "bob@x.io"),
        named(19, 1, "ann.bob@x.io.evil"),
        named(21, 1, "BOB@x.io.attacker"),
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
    fn pages_follow_uid_order_through_inserts_and_removals() {
        let mut accounts: Accounts = [30, 10, 20].into_iter().map(|uid| (uid, Account::new(uid, 1))).collect();
        let uids = |a: &Accounts, start, count| a.page(start, count).map(|a| a.uid).collect::<Vec<_>>();
        assert_eq!(uids(&accounts, 0, 2), [10, 20]);
        accounts.insert(15, Account::new(15, 2));
        accounts.insert(20, Account::new(20, 3)); // a replacement, not a second 20
        assert_eq!(uids(&accounts, 1, 10), [15, 20, 30]);
        assert_eq!(accounts[&20].status, 3);
        assert!(accounts.remove(&15).is_some() && accounts.remove(&15).is_none());
        assert_eq!(uids(&accounts, 0, usize::MAX), [10, 20, 30]);
        assert_eq!(uids(&accounts, 3, 5), Vec::<u64>::new());
        assert_eq!(uids(&accounts, usize::MAX, 5), Vec::<u64>::new());
        assert_eq!(accounts.values().map(|a| a.uid).collect::<Vec<_>>(), uids(&accounts, 0, 3));
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

    #[test]
    fn the_populations_hold_email_decoys_of_an_active_user() {
        let p = population(300, 1000);
        for hundred in 0..3 {
            let target = &p[hundred * 100 + 46];
            assert_eq!((target.status, target.is_enabled), (1, Some(true)));
            let needle = target.email.to_lowercase();
            let listed: Vec<&Account> = p.iter().filter(|a| a.email.to_lowercase().contains(&needle)).collect();
            assert_eq!(listed.len(), 3, "{needle}");
            let exact: Vec<u64> =
                listed.iter().filter(|a| a.email.eq_ignore_ascii_case(&target.email)).map(|a| a.uid).collect();
            assert_eq!(exact, [target.uid]);
            let decoys = decoys_of(&target.email);
            assert_eq!([&p[hundred * 100 + 47].email, &p[hundred * 100 + 48].email], [&decoys[0], &decoys[1]]);
        }
        let sample = sample_accounts();
        assert_eq!(decoys_of("bob@x.io"), ["ann.bob@x.io.evil".to_string(), "BOB@x.io.attacker".to_string()]);
        assert_eq!(sample.iter().filter(|a| a.email.to_lowercase().contains("bob@x.io")).count(), 3);
        let mut emails: Vec<String> = p.iter().chain(&sample).map(|a| a.email.to_lowercase()).collect();
        let all = emails.len();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), all, "emails are unique on CloudPe");
    }
}
