//! The JSON request HostBill's PHP side writes to the host's stdin. Parsing errors name the field
//! (`account.client_id: missing field`), and nothing runs until the whole request is valid, except
//! in a sync: there each account row is judged on its own ([`SyncRow`]), and a bad row becomes that
//! account's `error` decision instead of failing the others. Values are quoted short in errors
//! ([`quote`]): a 10 MB status never becomes a 10 MB message.
//!
//! HostBill hands PHP strings for most columns, so ids accept `12` or `"12"`, and the App row
//! accepts both key spellings HostBill uses (`host`/`hostname`, `secure`/`ssl`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::bindings::AppColumn;
use crate::bindings::hostbill::provisioning::types as wit;

/// One HostBill account and its client's custom fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRow {
    #[serde(deserialize_with = "id")]
    pub id: u64,
    #[serde(deserialize_with = "id")]
    pub client_id: u64,
    #[serde(deserialize_with = "status")]
    pub status: wit::HostbillStatus,
    /// Client custom fields by code, e.g. `{"cloudpeid": "1234"}`.
    #[serde(default, deserialize_with = "fields")]
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

/// One row of a sync's `accounts`: an account, or why it is not one.
#[derive(Debug, Clone)]
enum SyncRow {
    Valid(wit::Account),
    Invalid(InvalidRow),
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
            RequestError::Invalid { at, problem: strip_position(&inner.to_string()).to_string() }
        }
    })?;
    de.end().map_err(RequestError::TrailingData)?;
    Ok(value)
}

fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

/// The App (server) row, read straight into the WIT record through the one table of App columns
/// ([`AppColumn`]): each column by its name or alias, `secure` (or `ssl`) as a yes/no value, and
/// `custom`, HostBill's serialized custom settings (settings declared under
/// `CONNECTION_FIELD_CUSTOM`) as the PHP side unserializes them, blank values left out. Unknown
/// keys (HostBill's other columns) are ignored; an empty list (PHP's empty array) is an empty App.
impl<'de> Deserialize<'de> for wit::AppSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = wit::AppSettings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                // The name of the struct this replaced, so error messages stay as they were.
                f.write_str("struct AppRow")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<wit::AppSettings, A::Error> {
                let mut app = wit::AppSettings::empty();
                let mut seen: Vec<&'static str> = Vec::new();
                let mut first = |name: &'static str| {
                    if seen.contains(&name) {
                        return Err(de::Error::duplicate_field(name));
                    }
                    seen.push(name);
                    Ok(())
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "secure" | "ssl" => {
                            first("secure")?;
                            app.secure = map.next_value::<Flag>()?.0;
                        }
                        "custom" => {
                            first("custom")?;
                            let settings = map.next_value::<Fields>()?.0;
                            app.custom = settings
                                .into_iter()
                                .filter(|(_, value)| !value.trim().is_empty())
                                .map(|(name, value)| wit::AppSetting { name, value })
                                .collect();
                        }
                        other => match AppColumn::named(other) {
                            Some(column) => {
                                first(column.name)?;
                                *column.slot(&mut app) = map.next_value::<OptText>()?.0;
                            }
                            None => {
                                map.next_value::<de::IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(app)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<wit::AppSettings, A::Error> {
                match seq.next_element::<de::IgnoredAny>()? {
                    None => Ok(wit::AppSettings::empty()),
                    Some(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
                }
            }
        }
        d.deserialize_any(V)
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
        wit::Account {
            id: a.id,
            client_id: a.client_id,
            status: a.status,
            custom_fields: a.custom_fields.into_iter().map(|(code, value)| wit::CustomField { code, value }).collect(),
        }
    }
}

/// A JSON scalar (string, number or boolean) as text, read without buffering.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An App column's value: a scalar as text, `None` when null or blank.
struct OptText(Option<String>);

impl<'de> Deserialize<'de> for OptText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value: Option<Text> = Option::deserialize(d).map_err(|_| de::Error::custom("expected a string"))?;
        Ok(OptText(value.map(|t| t.0).filter(|s| !s.trim().is_empty())))
    }
}

/// A yes/no value as HostBill stores checkboxes.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Some(Text(text)) =
            Option::<Text>::deserialize(d).map_err(|_| de::Error::custom("expected true/false, 1/0 or \"on\""))?
        else {
            return Ok(Flag(false));
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "0.0" | "false" | "off" | "no" => Ok(Flag(false)),
            "1" | "1.0" | "true" | "on" | "yes" => Ok(Flag(true)),
            other => Err(de::Error::custom(format!("{other:?} is not a yes/no value"))),
        }
    }
}

/// An object of name to scalar value (see [`fields`]).
struct Fields(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fields(d).map(Fields)
    }
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let Text(text) = Text::deserialize(d).map_err(|_| de::Error::custom("expected a positive whole number"))?;
    parse_id(&text).map_err(de::Error::custom)
}

fn parse_id(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{} is not a positive whole number", quote(text))),
    }
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<wit::HostbillStatus, D::Error> {
    let text = String::deserialize(d).map_err(|_| de::Error::custom("expected a HostBill status string"))?;
    parse_status(&text).map_err(de::Error::custom)
}

/// `{what} is not a HostBill status (Pending, Active, ...)`.
fn not_a_status(what: &str) -> String {
    let names: Vec<&str> = wit::HostbillStatus::ALL.iter().map(|s| s.hostbill_name()).collect();
    format!("{what} is not a HostBill status ({})", names.join(", "))
}

fn parse_status(text: &str) -> Result<wit::HostbillStatus, String> {
    wit::HostbillStatus::from_hostbill_name(text).ok_or_else(|| not_a_status(&quote(text)))
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

/// A JSON value as a sync row reads it: never a parse error, whatever its type (a nested value
/// is skipped and named), so one bad row cannot stop the others from being read. A text is
/// borrowed from the request when it has no escapes (a status needs no copy to be read).
enum Loose<'de> {
    Text(Cow<'de, str>),
    Number(u64),
    Null,
    /// What else it was: `a number`, `a boolean`, `an object`, `a list`.
    Other(&'static str, String),
}

impl Loose<'_> {
    /// The value in a problem description.
    fn describe(&self) -> String {
        match self {
            Loose::Text(t) => quote(t),
            Loose::Number(n) => n.to_string(),
            Loose::Null => "null".to_string(),
            Loose::Other(_, shown) => shown.clone(),
        }
    }

    /// A scalar's text (`None` for null and nested values).
    fn text(self) -> Option<String> {
        match self {
            Loose::Text(t) => Some(t.into_owned()),
            Loose::Number(n) => Some(n.to_string()),
            Loose::Other("a number" | "a boolean", shown) => Some(shown),
            Loose::Null | Loose::Other(..) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose<'de>, E> {
                Ok(Loose::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose<'de>, E> {
                Ok(Loose::Other("a number", v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose<'de>, E> {
                Ok(Loose::Other("a number", v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose<'de>, E> {
                Ok(Loose::Other("a boolean", v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'de>, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other("an object", "an object".to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other("a list", "a list".to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A row's `custom_fields`, read loosely: a value that is not a scalar is a problem of the row.
/// Sorted by code, a repeated code keeping its last value (as [`AccountRow`]'s map does).
struct LooseFields(Result<Vec<wit::CustomField>, String>);

impl<'de> Deserialize<'de> for LooseFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = LooseFields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of name to value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<LooseFields, A::Error> {
                // Room for the usual one field: a push into an empty Vec makes room for four,
                // and the shrink below would then reallocate every row's list.
                let mut fields = Vec::with_capacity(1);
                let mut problem = None;
                while let Some((code, value)) = map.next_entry::<String, Loose<'de>>()? {
                    match value {
                        Loose::Null => {}
                        Loose::Other(kind @ ("an object" | "a list"), _) => {
                            problem
                                .get_or_insert_with(|| format!("custom field {} is {kind}, not a value", quote(&code)));
                        }
                        scalar => fields.push(wit::CustomField { code, value: scalar.text().unwrap_or_default() }),
                    }
                }
                if fields.len() > 1 {
                    fields.reverse();
                    fields.sort_by(|a, b| a.code.cmp(&b.code));
                    fields.dedup_by(|later, kept| later.code == kept.code);
                }
                // A push-grown Vec keeps room for four fields: a million accounts with one field
                // each would hold 144 MB of it.
                fields.shrink_to_fit();
                Ok(LooseFields(problem.map_or(Ok(fields), Err)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LooseFields, A::Error> {
                let mut empty = true;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    empty = false;
                }
                Ok(LooseFields(if empty {
                    Ok(Vec::new())
                } else {
                    Err("custom_fields is a list, not an object of name to value".to_string())
                }))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseFields, E> {
                Ok(LooseFields(Ok(Vec::new())))
            }
            fn visit_none<E: de::Error>(self) -> Result<LooseFields, E> {
                Ok(LooseFields(Ok(Vec::new())))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<LooseFields, D::Error> {
                LooseFields::deserialize(d)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseFields, E> {
                Ok(LooseFields(Err(format!("custom_fields is {}, not an object of name to value", quote(v)))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseFields, E> {
                Ok(LooseFields(Err(format!("custom_fields is {v}, not an object of name to value"))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseFields, E> {
                Ok(LooseFields(Err(format!("custom_fields is {v}, not an object of name to value"))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseFields, E> {
                Ok(LooseFields(Err(format!("custom_fields is {v}, not an object of name to value"))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LooseFields, E> {
                Ok(LooseFields(Err(format!("custom_fields is {v}, not an object of name to value"))))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for SyncRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = SyncRow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an account row")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<SyncRow, A::Error> {
                let (mut id, mut client_id, mut status, mut custom_fields) = (None, None, None, None);
                let mut problems: Vec<String> = Vec::new();
                while let Some(key) = map.next_key::<RowKey>()? {
                    match key {
                        RowKey::Id => id = Some(map.next_value::<Loose>()?),
                        RowKey::ClientId => client_id = Some(map.next_value::<Loose>()?),
                        RowKey::Status => status = Some(map.next_value::<Loose>()?),
                        RowKey::CustomFields => custom_fields = Some(map.next_value::<LooseFields>()?.0),
                        RowKey::Other(name) => {
                            map.next_value::<de::IgnoredAny>()?;
                            problems.push(format!("unknown field {}", quote(&name)));
                        }
                    }
                }
                let mut number = |name: &str, value: Option<Loose<'de>>| match value {
                    None => {
                        problems.push(format!("missing field `{name}`"));
                        None
                    }
                    Some(Loose::Number(n)) if n > 0 => Some(n),
                    Some(Loose::Text(t)) => parse_id(&t).map_err(|e| problems.push(format!("{name} {e}"))).ok(),
                    Some(other) => {
                        problems.push(format!("{name} {} is not a positive whole number", other.describe()));
                        None
                    }
                };
                let id = number("id", id);
                let client_id = number("client_id", client_id);
                let status = match status {
                    None => Err("missing field `status`".to_string()),
                    Some(Loose::Text(t)) => parse_status(&t).map_err(|e| format!("status {e}")),
                    Some(other) => Err(format!("status {}", not_a_status(&other.describe()))),
                }
                .map_err(|e| problems.push(e))
                .ok();
                let custom_fields = custom_fields.unwrap_or(Ok(Vec::new())).map_err(|e| problems.push(e)).ok();
                Ok(match (id, client_id, status, custom_fields) {
                    (Some(id), Some(client_id), Some(status), Some(custom_fields)) if problems.is_empty() => {
                        SyncRow::Valid(wit::Account { id, client_id, status, custom_fields })
                    }
                    _ => SyncRow::Invalid(InvalidRow { account_id: id, problem: problems.join("; ") }),
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SyncRow, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(SyncRow::not_an_object("a list"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object(&quote(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object(&v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object(&v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object(&v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object(&v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<SyncRow, E> {
                Ok(SyncRow::not_an_object("null"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for SyncRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = SyncRows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of account rows")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SyncRows, A::Error> {
                let mut rows =
                    SyncRows { valid: Vec::with_capacity(seq.size_hint().unwrap_or(0)), invalid: Vec::new() };
                while let Some(row) = seq.next_element::<SyncRow>()? {
                    match row {
                        SyncRow::Valid(account) => rows.valid.push(account),
                        SyncRow::Invalid(why) => rows.invalid.push((rows.valid.len() + rows.invalid.len(), why)),
                    }
                }
                Ok(rows)
            }
        }
        d.deserialize_seq(V)
    }
}

impl SyncRow {
    fn not_an_object(what: &str) -> SyncRow {
        SyncRow::Invalid(InvalidRow { account_id: None, problem: format!("the row is {what}, not an account object") })
    }
}

/// A key of an account row, read without allocating for the known ones.
enum RowKey {
    Id,
    ClientId,
    Status,
    CustomFields,
    Other(String),
}

impl<'de> Deserialize<'de> for RowKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = RowKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RowKey, E> {
                Ok(match v {
                    "id" => RowKey::Id,
                    "client_id" => RowKey::ClientId,
                    "status" => RowKey::Status,
                    "custom_fields" => RowKey::CustomFields,
                    other => RowKey::Other(other.to_string()),
                })
            }
        }
        d.deserialize_str(V)
    }
}

fn fields<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of name to value")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields = BTreeMap::new();
            while let Some((code, value)) = map.next_entry::<String, Option<Text>>()? {
                if let Some(Text(value)) = value {
                    fields.insert(code, value);
                }
            }
            Ok(fields)
        }
        // PHP encodes an empty array as `[]`.
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            match seq.next_element::<de::IgnoredAny>()? {
                None => Ok(BTreeMap::new()),
                Some(_) => Err(de::Error::custom("expected an object of name to value, not a list")),
            }
        }
    }
    d.deserialize_any(V)
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
