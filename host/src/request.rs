//! The JSON request HostBill's PHP side writes to the host's stdin. Parsing errors name the field
//! (`account.client_id: missing field`), and nothing runs until the whole request is valid.
//!
//! HostBill hands PHP strings for most columns, so ids accept `12` or `"12"`, and the App row
//! accepts both key spellings HostBill uses (`host`/`hostname`, `secure`/`ssl`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::bindings::hostbill::provisioning::types as wit;

/// The App (server) row. Unknown keys (HostBill's other columns) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppRow {
    #[serde(default, alias = "hostname", deserialize_with = "opt_text")]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub ip: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub password: Option<String>,
    #[serde(default, alias = "ssl", deserialize_with = "flag")]
    pub secure: bool,
    #[serde(default, deserialize_with = "opt_text")]
    pub status_url: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub field1: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub field2: Option<String>,
    /// Custom App settings by name: HostBill's serialized `custom` column, which the PHP side
    /// unserializes (settings declared under `CONNECTION_FIELD_CUSTOM`).
    #[serde(default, deserialize_with = "fields")]
    pub custom: BTreeMap<String, String>,
}

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
    pub app: AppRow,
    pub account: AccountRow,
}

/// Request of a connection test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRequest {
    pub app: AppRow,
}

/// Request of a sync.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub app: AppRow,
    pub accounts: Vec<AccountRow>,
}

/// Parses `bytes` as `T`; the error names the offending field by its path.
pub fn parse<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the request on stdin is empty: expected a JSON object".to_string());
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
            format!("the request on stdin is not valid JSON: {inner}")
        } else {
            format!("{at}{}", strip_position(&inner.to_string()))
        }
    })?;
    de.end().map_err(|e| format!("the request on stdin has trailing data: {e}"))?;
    Ok(value)
}

fn strip_position(message: &str) -> &str {
    message.find(" at line ").map_or(message, |i| &message[..i])
}

impl From<AppRow> for wit::AppSettings {
    fn from(a: AppRow) -> Self {
        wit::AppSettings {
            host: a.host,
            ip: a.ip,
            username: a.username,
            password: a.password,
            secure: a.secure,
            status_url: a.status_url,
            field1: a.field1,
            field2: a.field2,
            custom: a
                .custom
                .into_iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .map(|(name, value)| wit::AppSetting { name, value })
                .collect(),
        }
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

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<Text> = Option::deserialize(d).map_err(|_| de::Error::custom("expected a string"))?;
    Ok(value.map(|t| t.0).filter(|s| !s.trim().is_empty()))
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let Some(Text(text)) =
        Option::<Text>::deserialize(d).map_err(|_| de::Error::custom("expected true/false, 1/0 or \"on\""))?
    else {
        return Ok(false);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "0.0" | "false" | "off" | "no" => Ok(false),
        "1" | "1.0" | "true" | "on" | "yes" => Ok(true),
        other => Err(de::Error::custom(format!("{other:?} is not a yes/no value"))),
    }
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let Text(text) = Text::deserialize(d).map_err(|_| de::Error::custom("expected a positive whole number"))?;
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(de::Error::custom(format!("{text:?} is not a positive whole number"))),
    }
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<wit::HostbillStatus, D::Error> {
    use wit::HostbillStatus::*;
    let text = String::deserialize(d).map_err(|_| de::Error::custom("expected a HostBill status string"))?;
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "pending" => Pending,
        "active" => Active,
        "suspended" => Suspended,
        "terminated" => Terminated,
        "cancelled" => Cancelled,
        "fraud" => Fraud,
        _ => {
            return Err(de::Error::custom(format!(
                "{text:?} is not a HostBill status (Pending, Active, Suspended, Terminated, Cancelled, Fraud)"
            )));
        }
    })
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
        assert_eq!(r.account.id, 12);
        assert_eq!(r.account.client_id, 7);
        assert_eq!(r.account.status, wit::HostbillStatus::Active);
        assert_eq!(r.account.custom_fields.get("cloudpeid").map(String::as_str), Some("1234"));
        assert!(!r.account.custom_fields.contains_key("empty"));
        let r: AppRequest =
            parse(br#"{"app":{"field1":"a","custom":{"On terminate":"deactivate","Client field code":" ","n":7}}}"#)
                .unwrap();
        let settings = wit::AppSettings::from(r.app);
        assert_eq!(settings.get(&wit::AppField::Custom("On terminate".into())), Some("deactivate"));
        assert_eq!(settings.get(&wit::AppField::Custom("Client field code".into())), None);
        assert_eq!(settings.get(&wit::AppField::Custom("n".into())), Some("7"));
        assert_eq!(settings.custom.len(), 2, "the blank setting is left out");
        let r: AccountRequest =
            parse(br#"{"app":{"host":"h2"},"account":{"id":1,"client_id":2,"status":"Pending","custom_fields":[]}}"#)
                .unwrap();
        assert_eq!(r.app.host.as_deref(), Some("h2"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "empty"),
            (b"{not json", "not valid JSON"),
            (br#"{"app":{}}"#, "missing field `account`"),
            (br#"{"app":{},"account":{"id":1,"status":"Active"}}"#, "account: missing field `client_id`"),
            (
                br#"{"app":{},"account":{"id":"x1","client_id":2,"status":"Active"}}"#,
                "account.id: \"x1\" is not a positive whole number",
            ),
            (
                br#"{"app":{},"account":{"id":1,"client_id":2,"status":"Actve"}}"#,
                "account.status: \"Actve\" is not a HostBill status",
            ),
            (br#"{"app":{"ssl":"maybe"},"account":{"id":1,"client_id":2,"status":"Active"}}"#, "app.ssl"),
            (br#"{"app":{},"acount":{}}"#, "unknown field `acount`"),
            (br#"{"app":{"custom":"a:1:{}"},"account":{"id":1,"client_id":2,"status":"Active"}}"#, "app.custom"),
        ];
        for (input, needle) in cases {
            let err = parse::<AccountRequest>(input).unwrap_err();
            assert!(err.contains(needle), "{}: {err}", String::from_utf8_lossy(input));
        }
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

        /// Arbitrary bytes on stdin never panic, and every rejection says what is wrong.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse::<AccountRequest>(&bytes) {
                prop_assert!(!e.is_empty());
            }
        }

        /// Arbitrary JSON documents are either a valid request or rejected with the field named
        /// (or the document's overall problem).
        #[test]
        fn arbitrary_json(value in json()) {
            if let Err(e) = parse::<AccountRequest>(value.to_string().as_bytes()) {
                let named = e.contains('`') || e.contains(':') || e.contains("expected") || e.contains("empty");
                prop_assert!(named, "{}", e);
            }
        }
    }
}
