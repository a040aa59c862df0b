//! User creation: `system/admin/rest/createaccount` and `users/account/rest/addaccount`
//! (docs/cloudpe-api.md, "Finding users by email and creating users").
//!
//! Both are medium-confidence facts (one client's declaration or one caller each; no reply with
//! a uid seen), so which of the two paths exists is a switch ([`CreateVariant`]); the other
//! answers HTTP 404 like any unknown path. What this simulator assumes where the sources are
//! silent, each named here:
//!
//! - a password shorter than [`MIN_PASSWORD_LEN`] characters is refused (result 1, naming it);
//! - an email already held by a user (trimmed, case-insensitive) is refused with result 1 and
//!   "user with email [...] already exists" (the words a client must recognise are in the
//!   guest's `inferred.rs`);
//! - `createaccount` without `autoActive=true` leaves the user not activated, shown as status 2
//!   (the 24-hour deletion of a user never activated is not simulated); `addaccount` makes an
//!   active user (status 1);
//! - a new user gets the next uid (one more than the highest), the group `default` and
//!   `createdOn` now (UTC).
//!
//! The password is never kept: only its [`PasswordShape`] (length, character classes and a
//! fingerprint), for the tests that prove the module's passwords are random and strong.

use std::hash::{Hash, Hasher};

use serde::Serialize;
use serde_json::{Value, json};

use crate::accounts::Account;
use crate::api::{ApiState, RESULT_FAILURE};

/// The admin creation method (`system/admin`).
pub const CREATE_ACCOUNT: &str = "createaccount";
/// The users-service creation method (`users/account`).
pub const ADD_ACCOUNT: &str = "addaccount";

/// The shortest password accepted (an assumption: VAP's own sign-up form asks for at least 8).
pub const MIN_PASSWORD_LEN: usize = 8;

/// Which creation paths the platform has: the other answers HTTP 404.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CreateVariant {
    /// Only `system/admin/rest/createaccount` (the default).
    #[default]
    Admin,
    /// Only `users/account/rest/addaccount`.
    Users,
    /// Both.
    Both,
}

impl CreateVariant {
    /// Whether the platform serves `method` (any method but the two creation ones is served).
    pub fn offers(self, method: &str) -> bool {
        !matches!((self, method), (CreateVariant::Users, CREATE_ACCOUNT) | (CreateVariant::Admin, ADD_ACCOUNT))
    }
}

impl std::str::FromStr for CreateVariant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(CreateVariant::Admin),
            "users" => Ok(CreateVariant::Users),
            "both" => Ok(CreateVariant::Both),
            other => Err(format!("unknown create variant {other:?}: use admin, users or both")),
        }
    }
}

/// What the simulator keeps of a password: enough to judge its strength and tell two apart,
/// nothing to recover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PasswordShape {
    /// Characters.
    pub length: usize,
    pub upper: usize,
    pub lower: usize,
    pub digits: usize,
    /// Characters that are none of the three above.
    pub symbols: usize,
    /// Distinct characters.
    pub distinct: usize,
    /// A hash of the password (std's SipHash with fixed keys): equal passwords, equal
    /// fingerprints.
    pub fingerprint: u64,
}

impl PasswordShape {
    /// The shape of `password`.
    pub fn of(password: &str) -> PasswordShape {
        let count = |f: fn(&char) -> bool| password.chars().filter(f).count();
        let mut distinct: Vec<char> = password.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        password.hash(&mut hasher);
        PasswordShape {
            length: password.chars().count(),
            upper: count(char::is_ascii_uppercase),
            lower: count(char::is_ascii_lowercase),
            digits: count(char::is_ascii_digit),
            symbols: count(|c| !c.is_ascii_alphanumeric()),
            distinct: distinct.len(),
            fingerprint: hasher.finish(),
        }
    }
}

/// A user created through the API (the oracle of the provisioning tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub uid: u64,
    pub email: String,
    /// The method that created it.
    pub method: &'static str,
    pub password: PasswordShape,
}

fn failure(result: i64, error: String) -> Value {
    json!({"result": result, "error": error, "source": "JEL"})
}

/// `createaccount` or `addaccount` (`method`): creates the user, or answers an error naming what
/// is wrong and creates nothing.
pub fn create(state: &mut ApiState, method: &'static str, params: &crate::Params) -> Value {
    let given = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let Some(email) = given("email") else {
        return failure(RESULT_FAILURE, "parameter [email] is required".into());
    };
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        return failure(RESULT_FAILURE, format!("parameter [email] is not a valid email address: [{email}]"));
    }
    // The password is taken as sent (a space may be part of it); never echoed.
    let password = params.get("password").map(String::as_str).unwrap_or("");
    if password.is_empty() {
        return failure(RESULT_FAILURE, "parameter [password] is required".into());
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return failure(
            RESULT_FAILURE,
            format!("parameter [password] is too short: at least {MIN_PASSWORD_LEN} characters"),
        );
    }
    let wanted = email.to_lowercase();
    if state.accounts.values().any(|a| a.email.trim().to_lowercase() == wanted) {
        return failure(RESULT_FAILURE, format!("user with email [{email}] already exists"));
    }
    let active = match method {
        CREATE_ACCOUNT => params.get("autoActive").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        _ => true,
    };
    let uid = state.accounts.values().next_back().map_or(1, |a| a.uid + 1);
    let account =
        Account { email: email.to_string(), created_on: now(), ..Account::new(uid, if active { 1 } else { 2 }) };
    state.accounts.insert(uid, account);
    state.created.push(Created { uid, email: email.to_string(), method, password: PasswordShape::of(password) });
    match method {
        CREATE_ACCOUNT => {
            json!({"result": 0, "object": {"activationKey": format!("{:032x}", PasswordShape::of(&format!("{uid}{email}")).fingerprint)}})
        }
        _ => json!({"result": 0}),
    }
}

/// Now (UTC) as CloudPe prints dates.
fn now() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FaultKind, Reply, respond};

    const STRONG: &str = "Kq7#vT2m!Lp9xR4z";

    fn state(variant: CreateVariant) -> ApiState {
        let mut bob = Account::new(12, 1);
        bob.email = "bob@x.io".into();
        ApiState {
            appid: "cluster".into(),
            session: "tok".into(),
            accounts: [(12, bob), (13, Account::new(13, 1))].into_iter().collect(),
            create_variant: variant,
            ..ApiState::default()
        }
    }

    fn params(pairs: &[(&str, &str)]) -> crate::Params {
        let mut p: crate::Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        p.insert("session".into(), "tok".into());
        p
    }

    fn json(reply: Reply) -> Value {
        match reply {
            Reply::Json(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("not a JSON reply: {other:?}"),
        }
    }

    #[test]
    fn createaccount_makes_an_active_user_with_the_next_uid_and_answers_an_activation_key() {
        let mut s = state(CreateVariant::Admin);
        let v = json(respond(
            &mut s,
            CREATE_ACCOUNT,
            &params(&[("email", " Ann@x.io "), ("password", STRONG), ("autoActive", "true")]),
            None,
        ));
        assert_eq!(v["result"], 0, "{v}");
        assert!(v["object"]["activationKey"].as_str().is_some_and(|k| k.len() == 32), "{v}");
        assert!(v.get("uid").is_none() && v["object"].get("uid").is_none(), "no reply carries the uid: {v}");
        let user = &s.accounts[&14];
        assert_eq!((user.email.as_str(), user.status, user.group.as_str()), ("Ann@x.io", 1, "default"));
        assert_eq!(user.created_on.len(), 19, "{}", user.created_on);
        assert_eq!(s.created.len(), 1);
        assert_eq!(s.created[0].password, PasswordShape::of(STRONG));
        assert!(!v.to_string().contains(STRONG));
        // Without autoActive the user waits for activation: status 2.
        let v = json(respond(&mut s, CREATE_ACCOUNT, &params(&[("email", "cy@x.io"), ("password", STRONG)]), None));
        assert_eq!(v["result"], 0);
        assert_eq!(s.accounts[&15].status, 2);
    }

    #[test]
    fn addaccount_answers_result_zero_only() {
        let mut s = state(CreateVariant::Users);
        let v = json(respond(&mut s, ADD_ACCOUNT, &params(&[("email", "ann@x.io"), ("password", STRONG)]), None));
        assert_eq!(v, json!({"result": 0}));
        assert_eq!((s.accounts[&14].status, s.created[0].method), (1, ADD_ACCOUNT));
    }

    #[test]
    fn the_variant_decides_which_path_exists_and_the_other_is_404() {
        let p = params(&[("email", "ann@x.io"), ("password", STRONG)]);
        for (variant, method, exists) in [
            (CreateVariant::Admin, CREATE_ACCOUNT, true),
            (CreateVariant::Admin, ADD_ACCOUNT, false),
            (CreateVariant::Users, CREATE_ACCOUNT, false),
            (CreateVariant::Users, ADD_ACCOUNT, true),
            (CreateVariant::Both, CREATE_ACCOUNT, true),
            (CreateVariant::Both, ADD_ACCOUNT, true),
        ] {
            let mut s = state(variant);
            let reply = respond(&mut s, method, &p, None);
            if exists {
                assert_eq!(json(reply)["result"], 0, "{variant:?} {method}");
                assert_eq!(s.created.len(), 1);
            } else {
                assert!(matches!(reply, Reply::Http { status: 404, .. }), "{variant:?} {method}: {reply:?}");
                assert!(s.created.is_empty() && s.accounts.len() == 2);
            }
        }
        assert_eq!("both".parse::<CreateVariant>(), Ok(CreateVariant::Both));
        assert!("billing".parse::<CreateVariant>().unwrap_err().contains("admin, users or both"));
    }

    #[test]
    fn bad_input_is_named_and_creates_nothing() {
        for (method, pairs, needle) in [
            (CREATE_ACCOUNT, &[("password", STRONG)][..], "[email] is required"),
            (CREATE_ACCOUNT, &[("email", "  "), ("password", STRONG)][..], "[email] is required"),
            (CREATE_ACCOUNT, &[("email", "not-an-email"), ("password", STRONG)][..], "[email] is not a valid"),
            (CREATE_ACCOUNT, &[("email", "ann@x.io")][..], "[password] is required"),
            (ADD_ACCOUNT, &[("email", "ann@x.io"), ("password", "")][..], "[password] is required"),
            (ADD_ACCOUNT, &[("email", "ann@x.io"), ("password", "Ab1!xyz")][..], "[password] is too short"),
        ] {
            let mut s = state(CreateVariant::Both);
            let v = json(respond(&mut s, method, &params(pairs), None));
            assert_eq!(v["result"], RESULT_FAILURE, "{pairs:?}: {v}");
            assert!(v["error"].as_str().unwrap().contains(needle), "{pairs:?}: {v}");
            assert!(!v.to_string().contains("Ab1!xyz"), "the password is never echoed: {v}");
            assert!(s.created.is_empty() && s.accounts.len() == 2, "{pairs:?}");
        }
    }

    #[test]
    fn an_email_taken_in_any_case_is_refused_as_already_existing() {
        let mut s = state(CreateVariant::Admin);
        for email in ["bob@x.io", "BOB@X.IO", " Bob@x.io "] {
            let v = json(respond(&mut s, CREATE_ACCOUNT, &params(&[("email", email), ("password", STRONG)]), None));
            assert_eq!(v["result"], RESULT_FAILURE, "{email}");
            assert!(v["error"].as_str().unwrap().contains("already exists"), "{v}");
        }
        assert!(s.created.is_empty() && s.accounts.len() == 2);
    }

    #[test]
    fn a_lost_reply_still_creates_the_user_and_8202_creates_nothing() {
        let mut s = state(CreateVariant::Admin);
        let p = params(&[("email", "ann@x.io"), ("password", STRONG)]);
        let reply = respond(&mut s, CREATE_ACCOUNT, &p, Some(FaultKind::Timeout.after_applying()));
        assert_eq!(reply, Reply::Transport(crate::TransportFault::Timeout));
        assert_eq!(s.created.len(), 1);
        assert_eq!(s.accounts[&14].email, "ann@x.io");
        let mut s = state(CreateVariant::Both);
        s.denied_methods.insert(ADD_ACCOUNT.into());
        let v = json(respond(&mut s, ADD_ACCOUNT, &p, None));
        assert_eq!(v["result"], 8202);
        assert!(s.created.is_empty());
    }

    #[test]
    fn a_password_shape_counts_classes_and_tells_passwords_apart() {
        let shape = PasswordShape::of("aB3$aB3$");
        assert_eq!((shape.length, shape.upper, shape.lower, shape.digits, shape.symbols), (8, 2, 2, 2, 2));
        assert_eq!(shape.distinct, 4);
        assert_ne!(PasswordShape::of("aB3$aB3$").fingerprint, PasswordShape::of("aB3$aB3%").fingerprint);
        assert!(!format!("{shape:?}").contains("aB3$"));
    }
}
