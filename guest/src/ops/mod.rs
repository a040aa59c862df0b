//! The module's operations, as plain Rust over a [`Platform`](crate::transport::Platform).

mod account;
mod connection;
mod lifecycle;
mod reconcile;
mod sync;
#[cfg(test)]
pub(crate) mod testing;
mod usage;

pub use account::{create, suspend, terminate, unsuspend};
pub use connection::test_connection;
pub use lifecycle::{capabilities, change_package, create_account, option_choices, review};
pub use reconcile::reconcile;
pub use sync::{sync, sync_streamed};
pub use usage::read_usage;

use crate::config::{self, Settings};
use crate::wit::{Account, AppSettings, Fact, ModuleError, ModuleInfo};

/// The module's version (a `test-variant` build reports another, for the swap test).
pub const VERSION: &str = if cfg!(feature = "test-variant") {
    concat!(env!("CARGO_PKG_VERSION"), "+test-variant")
} else {
    env!("CARGO_PKG_VERSION")
};

/// The module's metadata.
pub fn info() -> ModuleInfo {
    ModuleInfo {
        name: "CloudPe".to_string(),
        version: VERSION.to_string(),
        description: env!("CARGO_PKG_DESCRIPTION").to_string(),
        app_fields: config::app_fields(),
        endpoint_field: config::URL_FIELD,
    }
}

/// Validates the App settings.
fn settings(app: &AppSettings) -> Result<Settings, ModuleError> {
    Settings::from_app(app)
}

/// The CloudPe user id of `account`'s client, read from the configured custom field. A missing or
/// malformed id is a configuration error that names the client and the field.
pub fn cloudpe_uid(settings: &Settings, account: &Account) -> Result<u64, ModuleError> {
    let code = &settings.id_field_code;
    let value = id_value(settings, account).ok_or_else(|| {
        ModuleError::Configuration(format!(
            "client #{} has no `{code}` custom field value: set it to the client's CloudPe user id",
            account.client_id
        ))
    })?;
    match value.parse::<u64>() {
        Ok(uid) if uid > 0 => Ok(uid),
        _ => Err(ModuleError::Configuration(format!(
            "client #{} has `{code}` = {}, which is not a CloudPe user id (a positive whole number)",
            account.client_id,
            quote(value)
        ))),
    }
}

/// The trimmed, non-empty value of `account`'s CloudPe id field, if it has one (valid or not).
fn id_value<'a>(settings: &Settings, account: &'a Account) -> Option<&'a str> {
    account
        .custom_fields
        .iter()
        .find(|f| f.code.trim().eq_ignore_ascii_case(&settings.id_field_code))
        .map(|f| f.value.trim())
        .filter(|v| !v.is_empty())
}

/// `value` quoted for an error: cut after 40 characters, with its length when cut, so a huge
/// custom field never becomes a huge error (the host refuses answers with strings over 64 KiB).
fn quote(value: &str) -> String {
    match value.char_indices().nth(40) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// Facts describing a CloudPe account.
fn account_facts(remote: &crate::api::RemoteAccount) -> Vec<Fact> {
    let uid = remote.uid.to_string();
    let status = status_fact(remote);
    fact_pairs(remote, &uid, &status).map(|(name, value)| Fact::new(name, value)).collect()
}

/// The `cloudpe-status` fact of a CloudPe user.
fn status_fact(remote: &crate::api::RemoteAccount) -> std::borrow::Cow<'static, str> {
    remote.status.map(crate::status::describe).unwrap_or(std::borrow::Cow::Borrowed("absent"))
}

/// The most facts [`fact_pairs`] lists for one user.
const MAX_FACTS: usize = 6;

/// The facts about a CloudPe user, as (name, value), given its uid and [`status_fact`] as text.
fn fact_pairs<'a>(
    remote: &'a crate::api::RemoteAccount,
    uid: &'a str,
    status: &'a str,
) -> impl Iterator<Item = (&'static str, &'a str)> {
    let login = match remote.is_enabled {
        Some(false) => "locked",
        Some(true) | None => "enabled",
    };
    [
        Some(("cloudpe-uid", uid)),
        remote.email().map(|email| ("cloudpe-email", email)),
        Some(("cloudpe-status", status)),
        Some(("cloudpe-login", login)),
        remote.group().map(|group| ("cloudpe-group", group)),
        remote.created_on().map(|created| ("cloudpe-created", created)),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::{CustomField, HostbillStatus};

    fn account(fields: &[(&str, &str)]) -> Account {
        Account {
            id: 1,
            client_id: 7,
            status: HostbillStatus::Active,
            custom_fields: fields
                .iter()
                .map(|(c, v)| CustomField { code: c.to_string(), value: v.to_string() })
                .collect(),
        }
    }

    fn settings() -> Settings {
        testing::settings("https://api.example.com")
    }

    #[test]
    fn uid_is_read_from_the_configured_field() {
        assert_eq!(cloudpe_uid(&settings(), &account(&[("other", "9"), ("cloudpeid", " 1234 ")])), Ok(1234));
        let mut s = settings();
        s.id_field_code = "cpid".into();
        assert_eq!(cloudpe_uid(&s, &account(&[("cloudpeid", "1"), ("CPID", "55")])), Ok(55));
    }

    #[test]
    fn missing_or_bad_uid_names_the_client() {
        for fields in [&[][..], &[("cloudpeid", "  ")][..]] {
            let e = cloudpe_uid(&settings(), &account(fields)).unwrap_err();
            assert!(
                matches!(&e, ModuleError::Configuration(m) if m.contains("client #7") && m.contains("cloudpeid")),
                "{e:?}"
            );
        }
        for bad in ["abc", "-3", "0", "12x", "1.5"] {
            let e = cloudpe_uid(&settings(), &account(&[("cloudpeid", bad)])).unwrap_err();
            assert!(matches!(&e, ModuleError::Configuration(m) if m.contains("client #7") && m.contains(bad)), "{e:?}");
        }
        let huge = "9x".repeat(40_000);
        let e = cloudpe_uid(&settings(), &account(&[("cloudpeid", &huge)])).unwrap_err();
        assert!(
            matches!(&e, ModuleError::Configuration(m) if m.len() < 300 && m.contains("(80000 bytes)") && m.contains("9x9x")),
            "{e:?}"
        );
    }
}
