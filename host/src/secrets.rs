//! The secrets of an App, for the scrubbers: what the report and stderr must never show, from
//! the App's fields and what the module's `info` declares secret.

use serde_json::Value;

use crate::bindings::hostbill::provisioning::types as wit;
use crate::bindings::{APP_COLUMNS, Secrecy};
use crate::scrub::Scrubber;

/// Secrets to remove from output: the App password and every field the module marks secret.
/// Without the module's info (it failed to load or run), every free-form App field is treated
/// as secret.
pub fn secrets(app: Option<&wit::AppSettings>, info: Option<&wit::ModuleInfo>) -> Scrubber {
    let Some(app) = app else {
        return Scrubber::default();
    };
    let mut values: Vec<&str> = app.always_secret().collect();
    match info {
        Some(info) => values.extend(declared_secrets(app, info)),
        None => values.extend(app.free_form()),
    }
    let known: Vec<&str> = app.always_secret().chain(info.into_iter().flat_map(|i| declared_secrets(app, i))).collect();
    Scrubber::new(values).with_starts_of(known)
}

/// The values of the App fields `info` declares secret.
fn declared_secrets<'a>(app: &'a wit::AppSettings, info: &'a wit::ModuleInfo) -> impl Iterator<Item = &'a str> {
    info.app_fields.iter().filter(|u| u.secret).filter_map(|u| app.get(&u.field))
}

/// Shortest free-form App value treated as a secret on stderr when no module declared it one:
/// secrets (tokens, passwords, keys) are long, while the values that are not (`on`, `none`, `1`,
/// `EUR`) are ordinary words, whose redaction would garble every stderr line that holds them.
pub const MIN_UNDECLARED_SECRET_CHARS: usize = 8;

/// The secrets scrubbed from stderr: the App's always-secret fields, the fields the module
/// declared secret (any length, once its `info` is known), and every free-form value of at least
/// [`MIN_UNDECLARED_SECRET_CHARS`] characters (before the module says which fields are secret, and
/// after it as a second line).
pub fn stderr_secrets(app: Option<&wit::AppSettings>, info: Option<&wit::ModuleInfo>) -> Scrubber {
    let Some(app) = app else {
        return Scrubber::default();
    };
    let mut values: Vec<&str> = app.always_secret().collect();
    values.extend(app.free_form().filter(|v| v.trim().chars().count() >= MIN_UNDECLARED_SECRET_CHARS));
    let known: Vec<&str> = app.always_secret().chain(info.into_iter().flat_map(|i| declared_secrets(app, i))).collect();
    values.extend(info.into_iter().flat_map(|i| declared_secrets(app, i)));
    Scrubber::new(values).with_starts_of(known)
}

/// Best-effort secrets from a request that failed to parse, so an error quoting it leaks nothing.
pub fn secrets_of_raw(stdin: &[u8]) -> Scrubber {
    let Ok(value) = serde_json::from_slice::<Value>(stdin) else {
        return Scrubber::default();
    };
    let app = value.get("app");
    let custom = app.and_then(|a| a.get("custom")).and_then(Value::as_object);
    let texts: Vec<String> = APP_COLUMNS
        .iter()
        .filter(|c| c.secrecy != Secrecy::Declared)
        .filter_map(|c| app?.get(c.name)?.as_str().map(str::to_string))
        .chain(custom.into_iter().flat_map(|c| c.values().filter_map(|v| v.as_str().map(str::to_string))))
        .collect();
    Scrubber::new(texts.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_short_settings_and_hides_long_values_and_declared_secrets() {
        let mut app = wit::AppSettings::empty();
        app.password = Some("pw".into());
        app.field1 = Some("on".into());
        app.field2 = Some("tok1".into());
        app.custom = vec![
            wit::AppSetting { name: "flag".into(), value: "none".into() },
            wit::AppSetting { name: "note".into(), value: "long-free-form-value".into() },
        ];
        let before = stderr_secrets(Some(&app), None);
        let line = "connection on none tok1 pw long-free-form-value";
        assert_eq!(before.text(line), "connection on none tok1 [REDACTED] [REDACTED]");
        let info = wit::ModuleInfo {
            name: "m".into(),
            version: "1".into(),
            description: String::new(),
            app_fields: vec![wit::AppFieldUsage {
                field: wit::AppField::Field2,
                label: "Session".into(),
                description: String::new(),
                required: true,
                secret: true,
            }],
            endpoint_field: wit::AppField::StatusUrl,
        };
        let after = stderr_secrets(Some(&app), Some(&info));
        assert_eq!(after.text(line), "connection on none [REDACTED] [REDACTED] [REDACTED]");
        // The echoed start of a declared secret is removed, not that of a free-form value.
        app.field2 = Some("Cr0Zq8vLw2-session".into());
        let echoed = "session [Cr0Z...] and long... rejected";
        assert_eq!(
            stderr_secrets(Some(&app), Some(&info)).text(echoed),
            "session [[REDACTED]...] and long... rejected"
        );
        assert_eq!(secrets(Some(&app), Some(&info)).text(echoed), "session [[REDACTED]...] and long... rejected");
        // A report the module never described itself in still hides every free-form value.
        assert_eq!(secrets(Some(&app), None).text("on"), "[REDACTED]");
    }
}
