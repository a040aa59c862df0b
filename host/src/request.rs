//! The JSON request HostBill's PHP side writes to the host's stdin. Errors name the field
//! (`account.client_id: missing field`), and nothing runs until the whole request is valid, except
//! in a sync: there each account row is judged on its own ([`SyncRows`]), and a bad row becomes that
//! account's `error` decision instead of failing the others. Values are quoted short ([`quote`]).
//!
//! HostBill hands PHP strings for most columns, so ids accept `12` or `"12"`, and the App row
//! accepts both key spellings HostBill uses (`host`/`hostname`, `secure`/`ssl`). Every value is
//! first read as a [`Loose`] (whatever its JSON type), then judged by its field's rule ([`id`],
//! [`status`], [`fields`], ...): the strict requests and the sync's rows share rules and messages.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::bindings::AppColumn;
use crate::bindings::hostbill::provisioning::types as wit;

/// One HostBill account and its client's custom fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRow {
    #[serde(deserialize_with = "lenient_id")]
    pub id: u64,
    #[serde(deserialize_with = "lenient_id")]
    pub client_id: u64,
    #[serde(deserialize_with = "lenient_status")]
    pub status: wit::HostbillStatus,
    /// Client custom fields by code, e.g. `{"cloudpeid": "1234"}`.
    #[serde(default, deserialize_with = "lenient_fields")]
    pub custom_fields: BTreeMap<String, String>,
    /// The client's email (`reconcile` compares it; other operations ignore it).
    #[serde(default)]
    pub email: Option<String>,
}

/// Request of an operation on one account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub app: wit::AppSettings,
    pub account: AccountRow,
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

/// Request of a reconciliation: the App's accounts, each with its client's `email`. Read
/// strictly (a bad row is bad input): the report is about the links, not about broken rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    pub app: wit::AppSettings,
    pub accounts: Vec<AccountRow>,
}

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
        let at = if path == "." { String::new() } else { format!("{path}: ") };
        if inner.is_syntax() || inner.is_eof() {
            RequestError::NotJson(inner)
        } else {
            let message = inner.to_string();
            let problem = message.find(" at line ").map_or(&*message, |i| &message[..i]);
            RequestError::Invalid { at, problem: problem.to_string() }
        }
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

/// Any JSON value, as the request first reads it: never a parse error, whatever its type, so a
/// field's rule says what is wrong with it, and one bad sync row cannot stop the others from
/// being read. A text is borrowed from the request unless it has escapes (a status needs no copy).
enum Loose<'de> {
    Text(Cow<'de, str>),
    Number(u64),
    /// Another number or a boolean, as written.
    Other(String),
    Null,
    /// A list, skipped: only whether it was empty (PHP's empty array) is kept.
    List {
        empty: bool,
    },
    /// An object's entries (keys that are texts), in order.
    Object(Vec<(Cow<'de, str>, Loose<'de>)>),
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
        Ok(Loose::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
        Ok(Loose::Text(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Loose<'de>, E> {
        Ok(Loose::Number(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Loose<'de>, E> {
        Ok(Loose::Other(v.to_string()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Loose<'de>, E> {
        Ok(Loose::Other(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
        let empty = seq.next_element::<IgnoredAny>()?.is_none();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::List { empty })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry()? {
            if let Loose::Text(key) = key {
                entries.push((key, value));
            }
        }
        Ok(Loose::Object(entries))
    }
}

impl Loose<'_> {
    /// The value in a problem description: a scalar as written (texts quoted short), else its kind.
    fn describe(&self) -> String {
        match self {
            Loose::Text(t) => quote(t),
            Loose::Number(n) => n.to_string(),
            Loose::Other(shown) => shown.clone(),
            Loose::Null => "null".to_string(),
            Loose::List { .. } => "a list".to_string(),
            Loose::Object(_) => "an object".to_string(),
        }
    }

    /// A scalar's text; `None` for null, lists and objects.
    fn text(self) -> Option<String> {
        match self {
            Loose::Text(t) => Some(t.into_owned()),
            Loose::Number(n) => Some(n.to_string()),
            Loose::Other(shown) => Some(shown),
            Loose::Null | Loose::List { .. } | Loose::Object(_) => None,
        }
    }
}

/// An id: a positive whole number, or text holding one.
fn id(value: Loose) -> Result<u64, String> {
    let id = match &value {
        Loose::Number(n) => Some(*n),
        Loose::Text(t) => t.trim().parse().ok(),
        _ => None,
    };
    id.filter(|n| *n > 0).ok_or_else(|| format!("{} is not a positive whole number", value.describe()))
}

/// HostBill's spelling of a status, in any case.
fn status(value: Loose) -> Result<wit::HostbillStatus, String> {
    let status = if let Loose::Text(t) = &value { wit::HostbillStatus::from_hostbill_name(t) } else { None };
    status.ok_or_else(|| {
        let names: Vec<&str> = wit::HostbillStatus::ALL.iter().map(|s| s.hostbill_name()).collect();
        format!("{} is not a HostBill status ({})", value.describe(), names.join(", "))
    })
}

/// An object of name to scalar value (`custom_fields`, the App's `custom`; PHP encodes an empty
/// one as `[]`): sorted by name, a repeated name keeping its last value, null values left out;
/// or what is wrong with it (the first value that is not a scalar).
fn fields(value: Loose) -> Result<Vec<wit::CustomField>, String> {
    let entries = match value {
        Loose::Object(entries) => entries,
        Loose::Null | Loose::List { empty: true } => return Ok(Vec::new()),
        other => {
            let kind = if let Loose::Text(_) = other { "string " } else { "" };
            return Err(format!("invalid type: {kind}{}, expected an object of name to value", other.describe()));
        }
    };
    // Exactly the room needed: spare room in a million accounts' fields would be 100+ MB.
    let mut fields = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        match value {
            Loose::Null => {}
            Loose::List { .. } | Loose::Object(_) => {
                return Err(format!("custom field {} is {}, not a value", quote(&name), value.describe()));
            }
            scalar => {
                fields.push(wit::CustomField { code: name.into_owned(), value: scalar.text().unwrap_or_default() })
            }
        }
    }
    // Reversed, then stably sorted: the last of a repeated name comes first and is kept.
    fields.reverse();
    fields.sort_by(|a, b| a.code.cmp(&b.code));
    fields.dedup_by(|later, kept| later.code == kept.code);
    fields.shrink_to_fit();
    Ok(fields)
}

/// An App column's value: a scalar as text, `None` when null or blank.
fn column(value: Loose) -> Result<Option<String>, String> {
    match value {
        Loose::List { .. } | Loose::Object(_) => Err("expected a string".to_string()),
        scalar => Ok(scalar.text().filter(|s| !s.trim().is_empty())),
    }
}

/// A yes/no value as HostBill stores checkboxes.
fn yes_no(value: Loose) -> Result<bool, String> {
    let text = column(value).map_err(|_| "expected true/false, 1/0 or \"on\"")?.unwrap_or_default();
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "0.0" | "false" | "off" | "no" => Ok(false),
        "1" | "1.0" | "true" | "on" | "yes" => Ok(true),
        other => Err(format!("{other:?} is not a yes/no value")),
    }
}

/// A value read with a rule (`Rule(id)`): the rule's error is raised inside the value, so the
/// request's error names the value's path.
struct Rule<F>(F);

impl<'de, T, F: FnOnce(Loose<'de>) -> Result<T, String>> DeserializeSeed<'de> for Rule<F> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        (self.0)(Loose::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// The `deserialize_with` of [`AccountRow`]'s fields: each its rule, its error inside the field.
fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Rule(id).deserialize(d)
}

fn lenient_status<'de, D: Deserializer<'de>>(d: D) -> Result<wit::HostbillStatus, D::Error> {
    Rule(status).deserialize(d)
}

fn lenient_fields<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Rule(|v| Ok(fields(v)?.into_iter().map(|f| (f.code, f.value)).collect())).deserialize(d)
}

/// The App (server) row, read straight into the WIT record through the one table of App columns
/// ([`AppColumn`]): each column by its name or alias, `secure` (or `ssl`) as a yes/no value, and
/// `custom`, HostBill's serialized custom settings (settings declared under
/// `CONNECTION_FIELD_CUSTOM`) as the PHP side unserializes them, blank values left out. Unknown
/// keys (HostBill's other columns) are ignored; an empty list (PHP's empty array) is an empty App.
impl<'de> Deserialize<'de> for wit::AppSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Named after the struct this replaced, so error messages stay as they were.
        struct AppRow;
        impl<'de> Visitor<'de> for AppRow {
            type Value = wit::AppSettings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct AppRow")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<wit::AppSettings, A::Error> {
                let (mut app, mut seen) = (wit::AppSettings::empty(), Vec::new());
                while let Some(key) = map.next_key::<String>()? {
                    let column = AppColumn::named(&key);
                    let name = match (key.as_str(), column) {
                        ("secure" | "ssl", _) => "secure",
                        ("custom", _) => "custom",
                        (_, Some(column)) => column.name,
                        (_, None) => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if seen.contains(&name) {
                        return Err(de::Error::duplicate_field(name));
                    }
                    seen.push(name);
                    match column {
                        Some(c) => *c.slot(&mut app) = map.next_value_seed(Rule(self::column))?,
                        None if name == "secure" => app.secure = map.next_value_seed(Rule(yes_no))?,
                        None => {
                            let settings = map.next_value_seed(Rule(fields))?.into_iter();
                            let settings = settings.filter(|s| !s.value.trim().is_empty());
                            app.custom = settings.map(|s| wit::AppSetting { name: s.code, value: s.value }).collect();
                        }
                    }
                }
                Ok(app)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<wit::AppSettings, A::Error> {
                match seq.next_element::<IgnoredAny>()? {
                    None => Ok(wit::AppSettings::empty()),
                    Some(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
                }
            }
        }
        d.deserialize_any(AppRow)
    }
}

impl From<AccountRow> for wit::ClientAccount {
    fn from(mut a: AccountRow) -> Self {
        let client_email = a.email.take().map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        wit::ClientAccount { account: a.into(), client_email }
    }
}

impl From<AccountRow> for wit::Account {
    fn from(a: AccountRow) -> Self {
        let custom_fields = a.custom_fields.into_iter().map(|(code, value)| wit::CustomField { code, value });
        wit::Account { id: a.id, client_id: a.client_id, status: a.status, custom_fields: custom_fields.collect() }
    }
}

/// The rows, each read as a [`Loose`] (one row in memory at a time) and judged by [`account`].
impl<'de> Deserialize<'de> for SyncRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Rows;
        impl<'de> Visitor<'de> for Rows {
            type Value = SyncRows;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of account rows")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SyncRows, A::Error> {
                let mut rows = SyncRows::default();
                while let Some(row) = seq.next_element()? {
                    match account(row) {
                        Ok(account) => rows.valid.push(account),
                        Err(why) => rows.invalid.push((rows.valid.len() + rows.invalid.len(), why)),
                    }
                }
                Ok(rows)
            }
        }
        d.deserialize_seq(Rows)
    }
}

/// A sync row: its account, or every problem it has (unknown keys named), `; `-separated.
fn account(row: Loose) -> Result<wit::Account, InvalidRow> {
    let Loose::Object(entries) = row else {
        let problem = format!("the row is {}, not an account object", row.describe());
        return Err(InvalidRow { account_id: None, problem });
    };
    let (mut values, mut problems) = ([None, None, None, None], Vec::new());
    for (key, value) in entries {
        match ["id", "client_id", "status", "custom_fields"].iter().position(|k| *k == key) {
            Some(i) => values[i] = Some(value),
            None => problems.push(format!("unknown field {}", quote(&key))),
        }
    }
    let [id, client_id, status, custom_fields] = values;
    let id = field("id", id, self::id);
    let client_id = field("client_id", client_id, self::id);
    let status = field("status", status, self::status);
    let custom_fields = field("custom_fields:", custom_fields.or(Some(Loose::Null)), fields);
    match (id, client_id, status, custom_fields) {
        (Ok(id), Ok(client_id), Ok(status), Ok(custom_fields)) if problems.is_empty() => {
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
fn field<'de, T>(
    name: &str,
    value: Option<Loose<'de>>,
    rule: impl FnOnce(Loose<'de>) -> Result<T, String>,
) -> Result<T, String> {
    rule(value.ok_or_else(|| format!("missing field `{name}`"))?).map_err(|e| format!("{name} {e}"))
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
