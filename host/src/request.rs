//! The JSON request HostBill's PHP side writes to the host's stdin. Errors name the field
//! (`account.client_id: missing field`), and nothing runs until the whole request is valid, except
//! in a sync: there each account row is judged on its own ([`SyncRows`]), and a bad row becomes that
//! account's `error` decision instead of failing the others. Values are quoted short ([`quote`]).
//!
//! HostBill hands PHP strings for most columns, so ids accept `12` or `"12"`, and the App row
//! accepts both key spellings HostBill uses (`host`/`hostname`, `secure`/`ssl`). Every value is
//! read as a JSON [`Value`], then judged by its field's rule ([`id`], [`status`], [`fields`], ...):
//! the derived requests through `deserialize_with` (so errors name the path), a sync's rows directly.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Error as _, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::bindings::hostbill::provisioning::types as wit;

/// One HostBill account and its client's custom fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRow {
    #[serde(deserialize_with = "read_id")]
    pub id: u64,
    #[serde(deserialize_with = "read_id")]
    pub client_id: u64,
    #[serde(deserialize_with = "read_status")]
    pub status: wit::HostbillStatus,
    /// Client custom fields by code, e.g. `{"cloudpeid": "1234"}`.
    #[serde(default, deserialize_with = "read_fields")]
    pub custom_fields: BTreeMap<String, String>,
    /// The client's email: accepted and ignored, as before 2.4 (`create` and `change-package`
    /// read the request's `client_email`; a reconciliation's rows are [`ReconcileRow`]s).
    #[serde(default)]
    #[allow(dead_code)]
    pub email: Option<String>,
}

/// Request of an operation on one account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub app: wit::AppSettings,
    pub account: AccountRow,
}

/// Request of `create` and `change-package`: the account, and what linking and the product's
/// settings need besides it (both optional: a 2.0-2.3 module's `create` reads neither).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {
    pub app: wit::AppSettings,
    pub account: AccountRow,
    /// The client's email, trimmed; `None` when absent, null or blank.
    #[serde(default, deserialize_with = "read_email")]
    pub client_email: Option<String>,
    /// The product's module options by name (`{"CloudPe group": "premium"}`), blank values left out.
    #[serde(default, deserialize_with = "read_product")]
    pub product: Vec<wit::AppSetting>,
}

/// Request of `option-choices`: which product option's choices to list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionRequest {
    pub app: wit::AppSettings,
    /// The product option's name (`CloudPe group`), trimmed.
    #[serde(deserialize_with = "read_option")]
    pub option: String,
}

/// Request of a connection test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    pub app: wit::AppSettings,
}

/// Request of a sync. Only a request that is not an object with `app` and a list `accounts` fails
/// as a whole; each row is valid or invalid on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub app: wit::AppSettings,
    pub accounts: SyncRows,
}

/// Request of a reconciliation: the App's accounts, each with its client's `email` and its
/// product's options. Read strictly (a bad row is bad input): the report is about the links, not
/// about broken rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    pub app: wit::AppSettings,
    pub accounts: Vec<ReconcileRow>,
}

/// A reconciliation's account row: an [`AccountRow`] that may add its product's options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRow {
    #[serde(deserialize_with = "read_id")]
    pub id: u64,
    #[serde(deserialize_with = "read_id")]
    pub client_id: u64,
    #[serde(deserialize_with = "read_status")]
    pub status: wit::HostbillStatus,
    #[serde(default, deserialize_with = "read_fields")]
    pub custom_fields: BTreeMap<String, String>,
    /// The client's email (as before 2.4: any string; trimmed, blank is none, when converted).
    #[serde(default)]
    pub email: Option<String>,
    /// The product's module options by name (a 2.4 module reports group drift from them).
    #[serde(default, deserialize_with = "read_product")]
    pub product: Vec<wit::AppSetting>,
}

/// Longest client email accepted, in bytes: RFC 5321's limit on a path (254 octets of address).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Most product options a request may carry (a product has a handful).
pub const MAX_PRODUCT_OPTIONS: usize = 64;
/// Longest product option name, in bytes (HostBill's option names are short labels).
pub const MAX_OPTION_NAME_BYTES: usize = 255;
/// Longest product option value, in bytes.
pub const MAX_OPTION_VALUE_BYTES: usize = 4096;

/// A sync's `accounts`, split as they are read: the valid rows, ready for the module, and the
/// invalid ones with their place in the list.
#[derive(Debug, Default)]
pub struct SyncRows {
    pub valid: Vec<wit::Account>,
    /// `(index in the request, why)`, ascending.
    pub invalid: Vec<(usize, InvalidRow)>,
}

/// An account row the host could not read; it gets an `error` decision of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRow {
    /// The row's `id`, when that much was readable.
    pub account_id: Option<u64>,
    /// Every problem of the row, values quoted short (`status "Deleted" is not a HostBill status ...`).
    pub problem: String,
}

/// Why a request could not be read; each says what is wrong, naming the field when it can.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the request on stdin is empty: expected a JSON object")]
    Empty,
    #[error("the request on stdin is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the request on stdin has trailing data: {0}")]
    TrailingData(serde_json::Error),
    /// A value that is not what the request needs; `at` is its path and a colon (`account.id: `),
    /// empty for the document itself.
    #[error("{at}{problem}")]
    Invalid { at: String, problem: String },
}

/// Parses `bytes` as `T`; the error names the offending field by its path.
pub fn parse<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::Empty);
    }
    // Fast path; on failure parse again with path tracking, only to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return RequestError::NotJson(inner);
        }
        let message = inner.to_string();
        let problem = message.rfind(" at line ").map_or(&*message, |i| &message[..i]).to_string();
        RequestError::Invalid { at: if path == "." { String::new() } else { format!("{path}: ") }, problem }
    })?;
    de.end().map_err(RequestError::TrailingData)?;
    Ok(value)
}

/// Longest part of a value an error message quotes, in characters.
const QUOTED_CHARS: usize = 40;

/// `value` as an error message quotes it: JSON-style, cut after 40 characters, with its length
/// when cut (`"xxxx…" (10485760 bytes)`).
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// The value in a problem description: a scalar as written (texts quoted short), else its kind.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => quote(text),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        scalar => scalar.to_string(),
    }
}

/// A scalar's text (`None` when null); a list or an object is given back as the error.
fn text(value: Value) -> Result<Option<String>, Value> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        Value::Array(_) | Value::Object(_) => Err(value),
        scalar => Ok(Some(scalar.to_string())),
    }
}

/// An id: a positive whole number, or text holding one.
fn id(value: Value) -> Result<u64, String> {
    let id = match &value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    id.filter(|n| *n > 0).ok_or_else(|| format!("{} is not a positive whole number", describe(&value)))
}

/// HostBill's spelling of a status, in any case.
fn status(value: Value) -> Result<wit::HostbillStatus, String> {
    value.as_str().and_then(wit::HostbillStatus::from_hostbill_name).ok_or_else(|| {
        let names: Vec<&str> = wit::HostbillStatus::ALL.iter().map(|s| s.hostbill_name()).collect();
        format!("{} is not a HostBill status ({})", describe(&value), names.join(", "))
    })
}

/// An object of name to scalar value (`custom_fields`, the App's `custom`; PHP encodes an empty
/// one as `[]`): sorted by name, a repeated name keeping its last value, null values left out; or
/// what is wrong with it (the first value that is not a scalar).
fn fields(value: Value) -> Result<Vec<(String, String)>, String> {
    fields_of(value, "custom field")
}

/// [`fields`], naming an entry whose value is not a scalar as `what` (`option "x" is a list ...`).
fn fields_of(value: Value, what: &str) -> Result<Vec<(String, String)>, String> {
    let entries = match value {
        Value::Object(entries) => entries,
        v if v.is_null() || v.as_array().is_some_and(Vec::is_empty) => return Ok(Vec::new()),
        other => {
            let kind = if other.is_string() { "string " } else { "" };
            return Err(format!("invalid type: {kind}{}, expected an object of name to value", describe(&other)));
        }
    };
    let mut fields = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        match text(value) {
            Ok(value) => fields.extend(value.map(|value| (name, value))),
            Err(v) => return Err(format!("{what} {} is {}, not a value", quote(&name), describe(&v))),
        }
    }
    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(fields)
}

/// An App column's value: a scalar as text, `None` when null or blank.
fn column(value: Value) -> Result<Option<String>, String> {
    let text = text(value).map_err(|_| "expected a string")?;
    Ok(text.filter(|s| !s.trim().is_empty()))
}

/// A yes/no value as HostBill stores checkboxes.
fn yes_no(value: Value) -> Result<bool, String> {
    let text = text(value).map_err(|_| "expected true/false, 1/0 or \"on\"")?.unwrap_or_default();
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "0.0" | "false" | "off" | "no" => Ok(false),
        "1" | "1.0" | "true" | "on" | "yes" => Ok(true),
        other => Err(format!("{other:?} is not a yes/no value")),
    }
}

/// The App's custom settings (HostBill's serialized `custom` column, settings declared under
/// `CONNECTION_FIELD_CUSTOM`, as the PHP side unserializes them), blank values left out.
fn settings(value: Value) -> Result<Vec<wit::AppSetting>, String> {
    let settings = fields(value)?.into_iter().filter(|(_, value)| !value.trim().is_empty());
    Ok(settings.map(|(name, value)| wit::AppSetting { name, value }).collect())
}

/// A client's email: a string (trimmed; blank is none), null or absent; at most
/// [`MAX_EMAIL_BYTES`]. Anything else is refused, not guessed at: a link is made by it.
fn email(value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            let text = text.trim();
            if text.len() > MAX_EMAIL_BYTES {
                return Err(format!(
                    "{} is longer than an email address can be ({MAX_EMAIL_BYTES} bytes)",
                    quote(text)
                ));
            }
            Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
        }
        other => Err(format!("{} is not a string: expected the client's email or null", describe(&other))),
    }
}

/// The product's module options: an object of name to string or number value (like the App's
/// `custom`), blank values left out; at most [`MAX_PRODUCT_OPTIONS`] options, names of at most
/// [`MAX_OPTION_NAME_BYTES`], values of at most [`MAX_OPTION_VALUE_BYTES`].
fn product(value: Value) -> Result<Vec<wit::AppSetting>, String> {
    let options = fields_of(value, "option")?;
    if options.len() > MAX_PRODUCT_OPTIONS {
        return Err(format!("{} options; at most {MAX_PRODUCT_OPTIONS} are accepted", options.len()));
    }
    for (name, value) in &options {
        if name.trim().is_empty() {
            return Err("an option without a name".to_string());
        }
        if name.len() > MAX_OPTION_NAME_BYTES {
            return Err(format!("option name {} is longer than {MAX_OPTION_NAME_BYTES} bytes", quote(name)));
        }
        if value.len() > MAX_OPTION_VALUE_BYTES {
            return Err(format!(
                "option {} has a value of {} bytes; at most {MAX_OPTION_VALUE_BYTES} are accepted",
                quote(name),
                value.len()
            ));
        }
    }
    let options = options.into_iter().filter(|(_, value)| !value.trim().is_empty());
    Ok(options.map(|(name, value)| wit::AppSetting { name, value }).collect())
}

/// A product option's name: a non-empty string (trimmed), at most [`MAX_OPTION_NAME_BYTES`].
fn option_name(value: Value) -> Result<String, String> {
    let Value::String(text) = value else {
        return Err(format!(
            "{} is not a string: expected a product option's name, e.g. \"CloudPe group\"",
            describe(&value)
        ));
    };
    let name = text.trim();
    if name.is_empty() {
        return Err("empty: expected a product option's name, e.g. \"CloudPe group\"".to_string());
    }
    if name.len() > MAX_OPTION_NAME_BYTES {
        return Err(format!("{} is longer than {MAX_OPTION_NAME_BYTES} bytes", quote(name)));
    }
    Ok(name.to_string())
}

/// The `deserialize_with` functions of the derived rows: each reads a [`Value`] and judges it by
/// its rule, the problem raised inside the value, so that the error names its path.
macro_rules! read_with {
    ($($read:ident: $rule:expr => $t:ty;)*) => {$(
        fn $read<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
            $rule(Value::deserialize(d)?).map_err(D::Error::custom)
        }
    )*};
}
read_with! {
    read_id: id => u64;
    read_status: status => wit::HostbillStatus;
    read_fields: |v| fields(v).map(BTreeMap::from_iter) => BTreeMap<String, String>;
    read_column: column => Option<String>;
    read_yes_no: yes_no => bool;
    read_settings: settings => Vec<wit::AppSetting>;
    read_email: email => Option<String>;
    read_product: product => Vec<wit::AppSetting>;
    read_option: option_name => String;
}

/// The App (server) row, read straight into the WIT record (a column added there fails to compile
/// until it is named here): each column by its name or alias, `secure` (or `ssl`) as a yes/no
/// value, `custom` as [`settings`]. Unknown keys (HostBill's other columns) are ignored; an empty
/// list (PHP's empty array) is an empty App.
#[derive(Deserialize)]
#[serde(remote = "wit::AppSettings", expecting = "struct AppRow", default = "wit::AppSettings::empty")]
struct AppRow {
    #[serde(alias = "hostname", deserialize_with = "read_column")]
    host: Option<String>,
    #[serde(deserialize_with = "read_column")]
    ip: Option<String>,
    #[serde(deserialize_with = "read_column")]
    username: Option<String>,
    #[serde(deserialize_with = "read_column")]
    password: Option<String>,
    #[serde(alias = "ssl", deserialize_with = "read_yes_no")]
    secure: bool,
    #[serde(deserialize_with = "read_column")]
    status_url: Option<String>,
    #[serde(deserialize_with = "read_column")]
    field1: Option<String>,
    #[serde(deserialize_with = "read_column")]
    field2: Option<String>,
    #[serde(deserialize_with = "read_settings")]
    custom: Vec<wit::AppSetting>,
}

impl<'de> Deserialize<'de> for wit::AppSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AppRow::deserialize(d)
    }
}

impl From<wit::AccountContext> for wit::ClientAccount {
    /// What a reconciliation before 2.4 reads of a row (its product left out).
    fn from(c: wit::AccountContext) -> Self {
        wit::ClientAccount { account: c.account, client_email: c.client_email }
    }
}

impl LifecycleRequest {
    /// The account with what linking needs besides it, as the module's `lifecycle` reads it.
    pub fn context(self) -> (wit::AppSettings, wit::AccountContext) {
        let context = wit::AccountContext {
            account: self.account.into(),
            client_email: self.client_email,
            product: self.product,
        };
        (self.app, context)
    }
}

impl From<ReconcileRow> for wit::AccountContext {
    fn from(r: ReconcileRow) -> Self {
        let custom_fields = r.custom_fields.into_iter().map(|(code, value)| wit::CustomField { code, value });
        let account =
            wit::Account { id: r.id, client_id: r.client_id, status: r.status, custom_fields: custom_fields.collect() };
        let client_email = r.email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        wit::AccountContext { account, client_email, product: r.product }
    }
}

impl From<AccountRow> for wit::Account {
    fn from(a: AccountRow) -> Self {
        let custom_fields = a.custom_fields.into_iter().map(|(code, value)| wit::CustomField { code, value });
        wit::Account { id: a.id, client_id: a.client_id, status: a.status, custom_fields: custom_fields.collect() }
    }
}

/// The rows, each read as a [`Value`] (one row in memory at a time) and judged by [`account`].
impl<'de> Deserialize<'de> for SyncRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SyncRows::default())
    }
}

impl<'de> Visitor<'de> for SyncRows {
    type Value = SyncRows;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of account rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<SyncRows, A::Error> {
        while let Some(row) = seq.next_element()? {
            match account(row) {
                Ok(account) => self.valid.push(account),
                Err(why) => self.invalid.push((self.valid.len() + self.invalid.len(), why)),
            }
        }
        Ok(self)
    }
}

/// A sync row: its account, or every problem it has (unknown keys named), `; `-separated.
fn account(row: Value) -> Result<wit::Account, InvalidRow> {
    let Value::Object(mut row) = row else {
        let problem = format!("the row is {}, not an account object", describe(&row));
        return Err(InvalidRow { account_id: None, problem });
    };
    let (id, client_id) = (field(&mut row, "id", id), field(&mut row, "client_id", id));
    let status = field(&mut row, "status", status);
    let custom_fields =
        fields(row.remove("custom_fields").unwrap_or_default()).map_err(|e| format!("custom_fields: {e}"));
    let mut problems: Vec<String> = row.keys().map(|key| format!("unknown field {}", quote(key))).collect();
    match (id, client_id, status, custom_fields) {
        (Ok(id), Ok(client_id), Ok(status), Ok(fields)) if problems.is_empty() => {
            let custom_fields = fields.into_iter().map(|(code, value)| wit::CustomField { code, value }).collect();
            Ok(wit::Account { id, client_id, status, custom_fields })
        }
        (id, client_id, status, custom_fields) => {
            let account_id = id.as_ref().ok().copied();
            problems.extend([id.err(), client_id.err(), status.err(), custom_fields.err()].into_iter().flatten());
            Err(InvalidRow { account_id, problem: problems.join("; ") })
        }
    }
}

/// A sync row's field read with its rule; the problem names the field (`status "x" is not ...`).
fn field<T>(row: &mut Map<String, Value>, name: &str, rule: fn(Value) -> Result<T, String>) -> Result<T, String> {
    rule(row.remove(name).ok_or_else(|| format!("missing field `{name}`"))?).map_err(|e| format!("{name} {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostbill_shaped_rows_parse() {
        let r: AccountRequest = parse(
            br#"{"app":{"hostname":"h","ssl":"1","status_url":"https://x","field1":"cluster","field2":"t","id":"3","name":"CloudPe"},
                 "account":{"id":"12","client_id":7,"status":"active","custom_fields":{"cloudpeid":1234,"empty":null}}}"#,
        )
        .unwrap();
        assert_eq!(r.app.host.as_deref(), Some("h"));
        assert!(r.app.secure);
        assert_eq!(r.app.status_url.as_deref(), Some("https://x"));
        assert_eq!((r.app.field1.as_deref(), r.app.field2.as_deref()), (Some("cluster"), Some("t")));
        assert_eq!(r.account.id, 12);
        assert_eq!(r.account.client_id, 7);
        assert_eq!(r.account.status, wit::HostbillStatus::Active);
        assert_eq!(r.account.custom_fields.get("cloudpeid").map(String::as_str), Some("1234"));
        assert!(!r.account.custom_fields.contains_key("empty"));
        let r: AppRequest =
            parse(br#"{"app":{"field1":"a","custom":{"On terminate":"deactivate","Client field code":" ","n":7}}}"#)
                .unwrap();
        let settings = r.app;
        assert_eq!(settings.get(&wit::AppField::Custom("On terminate".into())), Some("deactivate"));
        assert_eq!(settings.get(&wit::AppField::Custom("Client field code".into())), None);
        assert_eq!(settings.get(&wit::AppField::Custom("n".into())), Some("7"));
        assert_eq!(settings.custom.len(), 2, "the blank setting is left out");
        let r: AccountRequest =
            parse(br#"{"app":{"host":"h2"},"account":{"id":1,"client_id":2,"status":"Pending","custom_fields":[]}}"#)
                .unwrap();
        assert_eq!(r.app.host.as_deref(), Some("h2"));
        let r: AppRequest = parse(br#"{"app":{"ssl":0,"password":" ","ip":12}}"#).unwrap();
        assert!(!r.app.secure);
        assert_eq!((r.app.password, r.app.ip.as_deref()), (None, Some("12")), "blank is absent, numbers are text");
        let r: AppRequest = parse(br#"{"app":[]}"#).unwrap();
        assert_eq!((r.app.host, r.app.custom.len()), (None, 0), "PHP's empty array is an empty App");
    }

    #[test]
    fn every_app_column_is_read_by_its_name() {
        for column in &crate::bindings::APP_COLUMNS {
            let r: AppRequest = parse(format!(r#"{{"app":{{"{}":"v"}}}}"#, column.name).as_bytes()).unwrap();
            assert_eq!(column.value(&r.app), Some("v"), "{}", column.name);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let statuses = "Pending, Active, Suspended, Terminated, Cancelled, Fraud";
        let cases: Vec<(&[u8], String)> = vec![
            (b"", "the request on stdin is empty: expected a JSON object".into()),
            (b"{not json", "the request on stdin is not valid JSON: key must be a string at line 1 column 2".into()),
            (br#"{"app":{}}"#, "missing field `account`".into()),
            (br#"{"app":{},"account":{"id":1,"status":"Active"}}"#, "account: missing field `client_id`".into()),
            (
                br#"{"app":{},"account":{"id":"x1","client_id":2,"status":"Active"}}"#,
                "account.id: \"x1\" is not a positive whole number".into(),
            ),
            (
                br#"{"app":{},"account":{"id":1,"client_id":2,"status":"Actve"}}"#,
                format!("account.status: \"Actve\" is not a HostBill status ({statuses})"),
            ),
            (
                br#"{"app":{"ssl":"maybe"},"account":{"id":1,"client_id":2,"status":"Active"}}"#,
                "app.ssl: \"maybe\" is not a yes/no value".into(),
            ),
            (
                br#"{"app":{"field2":{"a":1}},"account":{"id":1,"client_id":2,"status":"Active"}}"#,
                "app.field2: expected a string".into(),
            ),
            (
                br#"{"app":{"host":"a","hostname":"b"},"account":{"id":1,"client_id":2,"status":"Active"}}"#,
                "app: duplicate field `host`".into(),
            ),
            (br#"{"app":{},"acount":{}}"#, "acount: unknown field `acount`, expected `app` or `account`".into()),
            (
                br#"{"app":{"custom":"a:1:{}"},"account":{"id":1,"client_id":2,"status":"Active"}}"#,
                "app.custom: invalid type: string \"a:1:{}\", expected an object of name to value".into(),
            ),
            (
                br#"{"app":5,"account":{"id":1,"client_id":2,"status":"Active"}}"#,
                "app: invalid type: integer `5`, expected struct AppRow".into(),
            ),
        ];
        for (input, expected) in cases {
            let err = parse::<AccountRequest>(input).unwrap_err().to_string();
            assert_eq!(err, expected, "{}", String::from_utf8_lossy(input));
        }
    }
}

#[cfg(test)]
mod lifecycle_requests {
    use super::*;

    const ACCOUNT: &str = r#""account":{"id":5,"client_id":7,"status":"Pending"}"#;

    fn lifecycle(extra: &str) -> Result<LifecycleRequest, String> {
        parse::<LifecycleRequest>(format!(r#"{{"app":{{}},{ACCOUNT}{extra}}}"#).as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn create_reads_the_clients_email_and_the_products_options() {
        let r = lifecycle(
            r#","client_email":"  Ann@X.io ","product":{"CloudPe group":"premium","disk":20,"blank":" ","n":null}"#,
        )
        .unwrap();
        let (_, context) = r.context();
        assert_eq!(context.account.id, 5);
        assert_eq!(context.client_email.as_deref(), Some("Ann@X.io"), "trimmed, case kept");
        let options: Vec<(&str, &str)> = context.product.iter().map(|o| (o.name.as_str(), o.value.as_str())).collect();
        assert_eq!(options, [("CloudPe group", "premium"), ("disk", "20")], "sorted; blank and null left out");
        for absent in ["", r#","client_email":null,"product":[]"#, r#","client_email":"  ""#] {
            let (_, context) = lifecycle(absent).unwrap().context();
            assert_eq!((context.client_email, context.product.len()), (None, 0), "{absent}");
        }
    }

    #[test]
    fn bad_lifecycle_fields_are_named() {
        let long_email = format!("{}@x.io", "a".repeat(MAX_EMAIL_BYTES));
        let many: Vec<String> = (0..=MAX_PRODUCT_OPTIONS).map(|i| format!(r#""o{i}":"v""#)).collect();
        let cases = [
            (
                r#","client_email":12"#.to_string(),
                "client_email: 12 is not a string: expected the client's email or null".to_string(),
            ),
            (
                r#","client_email":["a@x.io"]"#.to_string(),
                "client_email: a list is not a string: expected the client's email or null".to_string(),
            ),
            (
                format!(r#","client_email":"{long_email}""#),
                format!("client_email: {} is longer than an email address can be (254 bytes)", quote(&long_email)),
            ),
            (
                r#","product":{"CloudPe group":["a"]}"#.to_string(),
                "product: option \"CloudPe group\" is a list, not a value".to_string(),
            ),
            (
                r#","product":"premium""#.to_string(),
                "product: invalid type: string \"premium\", expected an object of name to value".to_string(),
            ),
            (
                format!(r#","product":{{{}}}"#, many.join(",")),
                "product: 65 options; at most 64 are accepted".to_string(),
            ),
            (
                format!(r#","product":{{"g":"{}"}}"#, "v".repeat(MAX_OPTION_VALUE_BYTES + 1)),
                "product: option \"g\" has a value of 4097 bytes; at most 4096 are accepted".to_string(),
            ),
            (r#","product":{" ":"v"}"#.to_string(), "product: an option without a name".to_string()),
            (
                r#","clientemail":"a@x.io""#.to_string(),
                "clientemail: unknown field `clientemail`, expected one of `app`, `account`, `client_email`, `product`"
                    .to_string(),
            ),
        ];
        for (extra, expected) in cases {
            assert_eq!(lifecycle(&extra).unwrap_err(), expected, "{extra}");
        }
    }

    #[test]
    fn the_other_account_operations_still_refuse_lifecycle_fields() {
        let err = parse::<AccountRequest>(format!(r#"{{"app":{{}},{ACCOUNT},"client_email":"a@x.io"}}"#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("client_email: unknown field `client_email`"), "{err}");
    }

    #[test]
    fn option_choices_need_an_option_name() {
        let option = |json: &str| parse::<OptionRequest>(json.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(option(r#"{"app":{},"option":" CloudPe group "}"#).unwrap().option, "CloudPe group");
        let e = "expected a product option's name, e.g. \"CloudPe group\"";
        for (json, expected) in [
            (r#"{"app":{}}"#.to_string(), "missing field `option`".to_string()),
            (r#"{"app":{},"option":5}"#.to_string(), format!("option: 5 is not a string: {e}")),
            (r#"{"app":{},"option":null}"#.to_string(), format!("option: null is not a string: {e}")),
            (r#"{"app":{},"option":"  "}"#.to_string(), format!("option: empty: {e}")),
            (
                format!(r#"{{"app":{{}},"option":"{}"}}"#, "o".repeat(MAX_OPTION_NAME_BYTES + 1)),
                format!("option: {} is longer than 255 bytes", quote(&"o".repeat(MAX_OPTION_NAME_BYTES + 1))),
            ),
        ] {
            assert_eq!(option(&json).unwrap_err(), expected, "{json}");
        }
    }

    #[test]
    fn reconcile_rows_may_carry_their_products_options() {
        let r: ReconcileRequest = parse(
            br#"{"app":{},"accounts":[
                {"id":1,"client_id":2,"status":"Active","custom_fields":{"cloudpeid":"12"},"email":" a@x.io ","product":{"CloudPe group":"premium"}},
                {"id":2,"client_id":3,"status":"Active","email":""}]}"#,
        )
        .unwrap();
        let contexts: Vec<wit::AccountContext> = r.accounts.into_iter().map(Into::into).collect();
        assert_eq!(contexts[0].client_email.as_deref(), Some("a@x.io"));
        assert_eq!(
            (contexts[0].product[0].name.as_str(), contexts[0].product[0].value.as_str()),
            ("CloudPe group", "premium")
        );
        assert_eq!(contexts[0].account.custom_fields[0].value, "12");
        assert_eq!((contexts[1].client_email.as_ref(), contexts[1].product.len()), (None, 0));
        let older: wit::ClientAccount = contexts[0].clone().into();
        assert_eq!((older.account.id, older.client_email.as_deref()), (1, Some("a@x.io")));
        let err = parse::<ReconcileRequest>(
            br#"{"app":{},"accounts":[{"id":1,"client_id":2,"status":"Active","product":{"g":{"x":1}}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "accounts[0].product: option \"g\" is an object, not a value");
    }
}

#[cfg(test)]
mod sync_rows {
    use super::*;

    fn rows(accounts: &str) -> SyncRows {
        parse::<SyncRequest>(format!(r#"{{"app":{{}},"accounts":{accounts}}}"#).as_bytes()).unwrap().accounts
    }

    #[test]
    fn bad_rows_are_kept_apart_in_place() {
        let r = rows(
            r#"[{"id":1,"client_id":2,"status":"active","custom_fields":{"b":"2","a":1,"b":"3","n":null}},
                {"id":"7","client_id":2,"status":"Deleted"},
                {"id":3,"client_id":2,"status":null,"custom_fields":[],"extra":{"x":[1]}},
                null,
                {"id":4,"client_id":"4","status":" Suspended ","custom_fields":[]}]"#,
        );
        assert_eq!(r.valid.len(), 2);
        assert_eq!(r.valid[0].status, wit::HostbillStatus::Active);
        let fields: Vec<(&str, &str)> =
            r.valid[0].custom_fields.iter().map(|f| (f.code.as_str(), f.value.as_str())).collect();
        assert_eq!(fields, [("a", "1"), ("b", "3")], "sorted, the last of a repeated code kept");
        assert_eq!(r.valid[1].id, 4);
        let invalid: Vec<(usize, Option<u64>, &str)> =
            r.invalid.iter().map(|(i, row)| (*i, row.account_id, row.problem.as_str())).collect();
        assert_eq!(invalid[0].0, 1);
        assert_eq!(invalid[0].1, Some(7));
        assert!(invalid[0].2.starts_with("status \"Deleted\" is not a HostBill status (Pending"), "{invalid:?}");
        assert_eq!(invalid[1].0, 2);
        assert!(
            invalid[1].2.contains("unknown field \"extra\"") && invalid[1].2.contains("status null"),
            "{invalid:?}"
        );
        assert_eq!((invalid[2].0, invalid[2].1), (3, None));
        assert!(invalid[2].2.contains("the row is null"), "{invalid:?}");
    }

    #[test]
    fn escaped_texts_read_as_plain_ones() {
        // Texts without escapes are borrowed from the request, escaped ones copied: same rows.
        let plain = rows(r#"[{"id":"1","client_id":2,"status":"Active","custom_fields":{"cloudpeid":"12"}}]"#);
        let escaped =
            rows(r#"[{"id":"\u0031","client_id":2,"status":"\u0041ctive","custom_fields":{"cloudpeid":"1\u0032"}}]"#);
        assert!(plain.invalid.is_empty() && escaped.invalid.is_empty(), "{:?} {:?}", plain.invalid, escaped.invalid);
        assert_eq!(format!("{:?}", plain.valid), format!("{:?}", escaped.valid));
        assert_eq!(escaped.valid[0].custom_fields[0].value, "12");
    }

    #[test]
    fn long_values_are_quoted_short() {
        let long = "x".repeat(1 << 20);
        let r = rows(&format!(r#"[{{"id":1,"client_id":2,"status":"{long}"}}]"#));
        let problem = &r.invalid[0].1.problem;
        let shown = "x".repeat(QUOTED_CHARS);
        assert_eq!(
            problem,
            &format!(
                "status \"{shown}\"… (1048576 bytes) is not a HostBill status \
                 (Pending, Active, Suspended, Terminated, Cancelled, Fraud)"
            )
        );
        assert_eq!(quote("short"), "\"short\"");
    }

    #[test]
    fn a_request_that_is_not_a_list_of_rows_still_fails_whole() {
        let err = parse::<SyncRequest>(br#"{"app":{},"accounts":{"id":1}}"#).unwrap_err().to_string();
        assert_eq!(err, "accounts: invalid type: map, expected a list of account rows");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Arbitrary JSON values, nested a few levels.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-zA-Z0-9 _]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("app".to_string()),
                        Just("account".to_string()),
                        Just("id".to_string()),
                        Just("client_id".to_string()),
                        Just("status".to_string()),
                        Just("custom_fields".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes on stdin never panic; blank input is "empty", and input that is not
        /// JSON is rejected as such, unless it begins like a JSON value whose shape is already
        /// wrong before the bad bytes (then that is named, as for any JSON document).
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let result = parse::<AccountRequest>(&bytes);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                prop_assert!(matches!(result, Err(RequestError::Empty)));
            } else if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied().unwrap_or(b' ');
                let begins_a_value = b"{[\"-0123456789tfn".contains(&first);
                let e = result.unwrap_err();
                match e {
                    RequestError::NotJson(_) | RequestError::TrailingData(_) => {}
                    RequestError::Invalid { .. } => prop_assert!(begins_a_value, "{}", e),
                    RequestError::Empty => prop_assert!(false, "not blank: {:?}", bytes),
                }
            }
        }

        /// Arbitrary JSON documents are either a valid request or rejected with the field named:
        /// a scalar says it is not the request; a list names the place; an object's message is
        /// about `app` or `account` (missing, or at a path inside it) or names the unknown key.
        #[test]
        fn arbitrary_json(value in json()) {
            if let Err(e) = parse::<AccountRequest>(value.to_string().as_bytes()).map_err(|e| e.to_string()) {
                match &value {
                    serde_json::Value::Object(doc) => {
                        let at_path = ["app", "account"].iter().any(|f| {
                            e == format!("missing field `{f}`")
                                || (doc.contains_key(*f)
                                    && [": ", ".", "["].iter().any(|sep| e.starts_with(&format!("{f}{sep}"))))
                        });
                        let unknown = e.split_once(": unknown field `").is_some_and(|(at, rest)| {
                            rest.starts_with(&format!("{at}`")) && doc.contains_key(at) && at != "app" && at != "account"
                        });
                        prop_assert!(at_path || unknown, "{} for {}", e, value);
                    }
                    // A list is read as the fields in order: its errors name the place (`[0]: `).
                    serde_json::Value::Array(_) => prop_assert!(
                        e.contains("expected struct AccountRequest") || e.starts_with('['),
                        "{} for {}", e, value
                    ),
                    _ => prop_assert!(e.ends_with("expected struct AccountRequest"), "{} for {}", e, value),
                }
            }
        }
    }
}

#[cfg(test)]
mod speed {
    use std::time::{Duration, Instant};

    use super::*;

    /// A sync request as HostBill's PHP side writes it: ids as strings, one custom field each.
    pub fn sync_request(accounts: u64) -> Vec<u8> {
        let rows: Vec<String> = (1..=accounts)
            .map(|i| {
                format!(
                    r#"{{"id":"{i}","client_id":"{}","status":"Active","custom_fields":{{"cloudpeid":"{}"}}}}"#,
                    5000 + i,
                    100_000 + i
                )
            })
            .collect();
        format!(
            r#"{{"app":{{"status_url":"https://api.example.com/1.0","field1":"cluster","field2":"s","secure":"1"}},"accounts":[{}]}}"#,
            rows.join(",")
        )
        .into_bytes()
    }

    /// `cargo test --release -p hostbill-module-host --bin hostbill-module-host speed -- --ignored
    /// --nocapture`: the request parser beside serde_json only checking the same bytes' syntax
    /// (the floor of any parser of them), interleaved, medians and minimums of 41 runs.
    #[test]
    #[ignore]
    fn a_10000_account_sync_request() {
        let bytes = sync_request(10_000);
        let (mut ours, mut syntax) = (Vec::new(), Vec::new());
        let time = |f: &mut dyn FnMut()| -> Duration {
            let started = Instant::now();
            f();
            started.elapsed()
        };
        for _ in 0..41 {
            ours.push(time(&mut || assert_eq!(parse::<SyncRequest>(&bytes).unwrap().accounts.valid.len(), 10_000)));
            syntax.push(time(&mut || assert!(serde_json::from_slice::<de::IgnoredAny>(&bytes).is_ok())));
        }
        ours.sort();
        syntax.sort();
        println!(
            "{} bytes, 10,000 accounts: request parser median {:?} (min {:?}); serde_json checking the syntax only median {:?} (min {:?})",
            bytes.len(),
            ours[20],
            ours[0],
            syntax[20],
            syntax[0]
        );
    }
}
