//! Turns a CloudPe HTTP response into data or a [`ModuleError`] an admin can act on.
//!
//! Every API-level outcome is HTTP 200 with a JSON envelope `{"result": int, "error": string, ...}`;
//! a response failed when `result != 0` or `error` is non-empty. Anything else (another HTTP
//! status, a body that is not JSON) is a transport failure.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::inferred;
use crate::transport::HttpResponse;
use crate::wit::{ModuleError, RemoteError};

/// Inference (docs/cloudpe-api.md, "Replies"): the `result` code for an invalid or expired session.
pub const RESULT_SESSION_INVALID: i64 = 702;
/// `result` code: resource not found.
pub const RESULT_NOT_FOUND: i64 = 5;
/// `result` code: permission denied.
pub const RESULT_PERMISSION_DENIED: i64 = 8202;
/// The usage's method (docs/cloudpe-api.md, "Usage"): a token's API list may leave it out.
pub const BILLING_HISTORY_METHOD: &str = "getaccountbillinghistorybyperiodinner";
/// The optional methods, which a token's API list may leave out while the module's core calls
/// work, by the name in their URL, each with the permission an admin adds to the token's API
/// list (CloudPe's dotted form, as in its "required permissions" text). A `result` 8202 to one
/// of them names that permission; to any other method it means the token lacks admin rights.
pub const OPTIONAL_METHODS: [(&str, &str); 6] = [
    (BILLING_HISTORY_METHOD, "billing.Account.GetAccountBillingHistoryByPeriodInner"),
    inferred::PERMISSIONS[0],
    inferred::PERMISSIONS[1],
    inferred::PERMISSIONS[2],
    inferred::PERMISSIONS[3],
    inferred::PERMISSIONS[4],
];

/// The permission to allow for an optional method (see [`OPTIONAL_METHODS`]), by its URL name.
pub fn optional_permission(method: &str) -> Option<&'static str> {
    OPTIONAL_METHODS.iter().find(|(name, _)| name.eq_ignore_ascii_case(method)).map(|&(_, permission)| permission)
}

/// `result` code: method not found.
pub const RESULT_METHOD_NOT_FOUND: i64 = 1702;
/// `result` code: internal error.
pub const RESULT_INTERNAL_ERROR: i64 = 99;
/// `result` code: timeout.
pub const RESULT_TIMEOUT: i64 = 17;

#[derive(Deserialize)]
struct Envelope {
    result: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

/// A reply type. One that reads the envelope's `result` and `error` itself is parsed once: the
/// pages of the account list, a sync's bulk of bytes. Any other is read for its envelope first.
pub trait Reply: DeserializeOwned {
    /// The envelope's `result` and `error`, for a type that reads them.
    fn envelope(&self) -> Option<(Option<i64>, Option<&str>)> {
        None
    }
}

/// Parses the reply to `method` into `T`. `secret` is removed from any text copied out of the
/// reply (CloudPe echoes a rejected session token in its error message).
pub fn parse<T: Reply>(method: &str, response: &HttpResponse, secret: &str) -> Result<T, ModuleError> {
    if response.status == 404 {
        return Err(ModuleError::Configuration(format!(
            "CloudPe answered HTTP 404 (no such path) to {method}: check that the App's Host URL points at the CloudPe API"
        )));
    }
    if response.status != 200 {
        return Err(ModuleError::Transport(format!(
            "CloudPe answered HTTP {} to {method}{}",
            response.status,
            body_hint(&response.body, secret)
        )));
    }
    // One pass when the type reads the envelope too; if it cannot read the reply, the two passes
    // below say why, exactly as for any other type.
    if let Ok(reply) = serde_json::from_slice::<T>(&response.body)
        && let Some((result, error)) = reply.envelope()
    {
        return judge(method, result, error, secret).map(|()| reply);
    }
    let envelope: Envelope = serde_json::from_slice(&response.body).map_err(|e| {
        ModuleError::Transport(format!(
            "CloudPe's reply to {method} is not valid JSON ({}){}",
            json_problem(&e),
            body_hint(&response.body, secret)
        ))
    })?;
    judge(method, envelope.result, envelope.error.as_deref(), secret)?;
    serde_json::from_slice(&response.body).map_err(|e| {
        ModuleError::Transport(format!(
            "CloudPe's reply to {method} has an unexpected shape: {}",
            scrub(&e.to_string(), secret)
        ))
    })
}

/// The envelope's verdict: `result` 0 and no `error` is success.
fn judge(method: &str, result: Option<i64>, error: Option<&str>, secret: &str) -> Result<(), ModuleError> {
    let error = error.map(str::trim).unwrap_or("");
    match result {
        Some(0) if error.is_empty() => Ok(()),
        None if error.is_empty() => {
            Err(ModuleError::Transport(format!("CloudPe's reply to {method} has no `result` field")))
        }
        code => Err(api_error(method, code.unwrap_or(-1), &scrub(error, secret))),
    }
}

/// The `result` code of a reply, if it is a JSON envelope carrying one (for the call log).
pub fn result_code(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<Envelope>(body).ok()?.result
}

/// Longest start of a reply the call log keeps.
pub const REPLY_START_CHARS: usize = 500;

/// The start of a reply for the call log: whitespace runs collapsed, secrets scrubbed from the
/// whole text first (so no half of a token survives the cut), then cut to
/// [`REPLY_START_CHARS`].
/// Every member whose key names a secret ([`is_secret_name`]) is masked first, over the whole
/// reply: a reply longer than the cut still shows no `password` or `token` value at its start.
pub fn reply_start(body: &[u8], secret: &str) -> String {
    let text = mask_secret_members(&String::from_utf8_lossy(body));
    let text = scrub(&text.split_whitespace().collect::<Vec<_>>().join(" "), secret);
    let mut start: String = text.chars().take(REPLY_START_CHARS).collect();
    if text.chars().count() > REPLY_START_CHARS {
        start.push('…');
    }
    start
}

/// The error for a non-zero `result`, in words an admin can act on.
fn api_error(method: &str, code: i64, message: &str) -> ModuleError {
    let quoted = if message.is_empty() { String::new() } else { format!(": {message}") };
    match code {
        RESULT_SESSION_INVALID => ModuleError::Authentication(format!(
            "CloudPe rejected the session token (check the App's Session field){quoted}"
        )),
        RESULT_PERMISSION_DENIED if let Some(permission) = optional_permission(method) => {
            ModuleError::RemoteApi(RemoteError {
                code,
                message: format!(
                    "CloudPe denied {method}: allow {permission} ({method}) in the API list of the App's session token{quoted}"
                ),
            })
        }
        RESULT_PERMISSION_DENIED => ModuleError::Authentication(format!(
            "CloudPe denied {method}: the session token belongs to a user without platform-admin rights{quoted}"
        )),
        RESULT_NOT_FOUND => ModuleError::NotFound(format!("CloudPe has no such resource{quoted}")),
        RESULT_METHOD_NOT_FOUND => ModuleError::Configuration(format!(
            "CloudPe does not know the method {method}: check that the App's Host URL points at the CloudPe API{quoted}"
        )),
        _ => {
            let what = match code {
                RESULT_INTERNAL_ERROR => "CloudPe reported an internal error",
                RESULT_TIMEOUT => "CloudPe timed out",
                _ => "CloudPe reported an error",
            };
            ModuleError::RemoteApi(RemoteError { code, message: format!("{what} in {method}{quoted}") })
        }
    }
}

/// Replaces every occurrence of `secret` in `text`, any start of it at least
/// [`ECHOED_PREFIX_MIN`] characters long that is cut with an ellipsis or is at least
/// [`ECHOED_PREFIX_LONG`] bytes long (CloudPe's rejection quotes the first characters of the
/// token it was sent: `session [Cr0Z...] not valid`, docs/cloudpe-api.md), and any `session=`
/// parameter value whatever it is (a reply may echo a request with another token, or an encoded
/// form of this one).
pub fn scrub(text: &str, secret: &str) -> String {
    let text = redact_session_params(text);
    if secret.is_empty() { text } else { redact_secret_starts(&text, secret) }
}

/// The shortest start of the session token that is redacted wherever it appears. A token shorter
/// than this is redacted only whole.
pub const ECHOED_PREFIX_MIN: usize = 4;

/// `text` with every echo of `secret` (see [`scrub`]) replaced by `[REDACTED]`.
fn redact_secret_starts(text: &str, secret: &str) -> String {
    if secret.chars().count() < ECHOED_PREFIX_MIN {
        return text.replace(secret, "[REDACTED]");
    }
    let head_len = secret.char_indices().nth(ECHOED_PREFIX_MIN).map_or(secret.len(), |(at, _)| at);
    let head = &secret[..head_len];
    let (bytes, secret_bytes) = (text.as_bytes(), secret.as_bytes());
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(at) = text[pos..].find(head) {
        let start = pos + at;
        let mut end = start + head.len();
        let mut matched = head.len();
        while end < bytes.len() && matched < secret_bytes.len() && bytes[end] == secret_bytes[matched] {
            end += 1;
            matched += 1;
        }
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&text[pos..start]);
        let (run, rest) = (&text[start..end], &text[end..]);
        // The whole token, a long start of it, or a start cut with an ellipsis; a short start
        // alone may be an ordinary word.
        let echoed = run.len() == secret.len()
            || run.len() >= ECHOED_PREFIX_LONG
            || rest.starts_with("...")
            || rest.starts_with('…');
        out.push_str(if echoed { "[REDACTED]" } else { run });
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// The length from which a start of the token is redacted wherever it appears, ellipsis or not.
pub const ECHOED_PREFIX_LONG: usize = 12;

/// What a value masked by its key shows, whatever its length (so its length is not told either).
pub const MASK: &str = "********";

/// Whether a JSON member or request parameter named `name` holds a secret: its name contains
/// (in any case) one of the words of the HostBill side's `cloudpe_audit::isSecretKey`.
pub fn is_secret_name(name: &str) -> bool {
    const WORDS: [&str; 9] = ["session", "passw", "token", "secret", "key", "hash", "sign", "auth", "cookie"];
    let lower = name.to_ascii_lowercase();
    WORDS.iter().any(|word| lower.contains(word))
}

/// `text`, a JSON reply (possibly cut, or not JSON at all), with the value of every member whose
/// key names a secret ([`is_secret_name`]) replaced by `"********"`, whatever the value is (a
/// string, a number, an object or list, or the rest of a cut text). Read as text rather than
/// parsed: a cut or malformed reply is masked too, and a large page is not held twice.
pub fn mask_secret_members(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let key_end = json_string_end(bytes, i);
        // Just before the closing quote, or the end of a cut text (either is a char boundary).
        let key_stop = if key_end > i + 1 && bytes[key_end - 1] == b'"' { key_end - 1 } else { key_end };
        let key = &text[i + 1..key_stop];
        i = key_end;
        let colon = skip_whitespace(bytes, i);
        if colon < bytes.len() && bytes[colon] == b':' && is_secret_name(key) {
            let value = skip_whitespace(bytes, colon + 1);
            let value_end = json_value_end(bytes, value);
            out.push_str(&text[copied..value]);
            out.push('"');
            out.push_str(MASK);
            out.push('"');
            copied = value_end;
            i = value_end;
        }
    }
    if copied == 0 {
        return text.to_string();
    }
    out.push_str(&text[copied..]);
    out
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// Where the JSON string opening at `start` ends (just past its closing quote), or the end of
/// the text if it is not closed.
fn json_string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Where the JSON value starting at `start` ends: a string, an object or list (to its matching
/// close), or a scalar (to the next `,`, `}`, `]` or whitespace); the end of the text if cut.
fn json_value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        None => bytes.len(),
        Some(b'"') => json_string_end(bytes, start),
        Some(b'{' | b'[') => {
            let (mut depth, mut at) = (0usize, start);
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => {
                        at = json_string_end(bytes, at);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return at + 1;
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            bytes.len()
        }
        Some(_) => {
            let mut at = start;
            while at < bytes.len() && !matches!(bytes[at], b',' | b'}' | b']') && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            at
        }
    }
}

/// `session=VALUE` with VALUE (up to `&`, whitespace, a quote or a bracket) replaced.
fn redact_session_params(text: &str) -> String {
    const KEY: &str = "session=";
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(at) = lower[pos..].find(KEY) {
        let value_start = pos + at + KEY.len();
        out.push_str(&text[pos..value_start]);
        let tail = &text[value_start..];
        let end =
            tail.find(|c: char| c == '&' || c.is_whitespace() || "\"'<>()[]{},;".contains(c)).unwrap_or(tail.len());
        out.push_str(if end > 0 && &tail[..end] != "[REDACTED]" { "[REDACTED]" } else { &tail[..end] });
        pos = value_start + end;
    }
    out.push_str(&text[pos..]);
    out
}

fn json_problem(e: &serde_json::Error) -> &'static str {
    if e.is_eof() { "truncated" } else { "malformed" }
}

/// A short, printable start of a body, to help the admin see what answered (e.g. a proxy page).
fn body_hint(body: &[u8], secret: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return " with an empty body".to_string();
    }
    // Scrub the whole text first: a token cut in half by the 80-character limit would no longer
    // match, and its first half would be shown.
    let text = scrub(&text, secret);
    let mut snippet: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        snippet.push('…');
    }
    format!(" (body starts: {snippet:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Checksum {
        checksum: String,
    }

    impl Reply for Checksum {}

    /// The page type read the ordinary way (envelope first, then the data).
    #[derive(Deserialize, Debug, PartialEq)]
    struct TwoPassPage {
        #[serde(rename = "totalCount", default)]
        total_count: u64,
        #[serde(default)]
        array: Vec<crate::api::RemoteAccount>,
    }

    impl Reply for TwoPassPage {}

    #[test]
    fn a_page_read_in_one_pass_gives_what_two_passes_give() {
        let bodies = [
            r#"{"result":0,"totalCount":2,"array":[{"uid":1,"status":1},{"uid":2,"email":"a@b"}]}"#,
            r#"{"array":[],"totalCount":0,"result":0,"error":""}"#,
            r#"{"totalCount":3,"array":[]}"#,
            r#"{"result":702,"error":"session [tok] is invalid","array":[]}"#,
            r#"{"result":99,"error":"internal","array":"not a list"}"#,
            r#"{"result":0,"array":"not a list"}"#,
            r#"{"result":"0","array":[]}"#,
            r#"{"result":0,"error":"boom","array":[]}"#,
            r#"[1,2]"#,
            r#"<html>502</html>"#,
        ];
        for body in bodies {
            let one = parse::<crate::api::AccountsPage>("getaccounts", &reply(200, body), "tok");
            let two = parse::<TwoPassPage>("getaccounts", &reply(200, body), "tok");
            match (one, two) {
                (Ok(one), Ok(two)) => assert_eq!((one.total_count, one.array), (two.total_count, two.array), "{body}"),
                (Err(one), Err(two)) => assert_eq!(one, two, "{body}"),
                (one, two) => panic!("{body}: one pass {one:?}, two passes {two:?}"),
            }
        }
    }

    fn reply(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn success_parses_data() {
        let c: Checksum =
            parse("getchecksum", &reply(200, r#"{"result":0,"checksum":"abc","extra":1}"#), "tok").unwrap();
        assert_eq!(c.checksum, "abc");
    }

    #[test]
    fn error_text_or_code_fails() {
        let e = parse::<Checksum>("getchecksum", &reply(200, r#"{"result":0,"error":"boom"}"#), "tok").unwrap_err();
        assert!(matches!(e, ModuleError::RemoteApi(RemoteError { code: 0, .. })), "{e:?}");
        let e = parse::<Checksum>("getaccounts", &reply(200, r#"{"result":99,"error":"oops","source":"JEL"}"#), "tok")
            .unwrap_err();
        assert_eq!(
            e,
            ModuleError::RemoteApi(RemoteError {
                code: 99,
                message: "CloudPe reported an internal error in getaccounts: oops".into()
            })
        );
        let e = parse::<Checksum>("x", &reply(200, r#"{"result":5,"error":"user not found"}"#), "tok").unwrap_err();
        assert!(matches!(e, ModuleError::NotFound(_)));
        let e = parse::<Checksum>("x", &reply(200, r#"{"result":8202,"error":"denied"}"#), "tok").unwrap_err();
        assert!(e.message().contains("platform-admin"), "{}", e.message());
    }

    #[test]
    fn a_denied_optional_method_names_the_permission_to_allow() {
        let denied = |method: &str| {
            parse::<Checksum>(method, &reply(200, r#"{"result":8202,"error":"Permission denied"}"#), "tok").unwrap_err()
        };
        for (method, permission) in [
            ("getgroups", "billing.GroupQuota.GetGroups"),
            ("setgroup", "billing.Account.SetGroup"),
            ("createaccount", "system.Admin.CreateAccount"),
            ("addaccount", "users.Account.AddAccount"),
            ("getuserinfo", "system.Admin.GetUserInfo"),
        ] {
            let e = denied(method);
            assert_eq!(
                e,
                ModuleError::RemoteApi(RemoteError {
                    code: 8202,
                    message: format!(
                        "CloudPe denied {method}: allow {permission} ({method}) in the API list of the App's session token: Permission denied"
                    )
                })
            );
        }
        // The usage's message is unchanged (the HostBill side and the docs quote it).
        assert_eq!(
            denied(BILLING_HISTORY_METHOD).message(),
            "CloudPe denied getaccountbillinghistorybyperiodinner: allow billing.Account.GetAccountBillingHistoryByPeriodInner \
             (getaccountbillinghistorybyperiodinner) in the API list of the App's session token: Permission denied (CloudPe result 8202)"
        );
        // A core method denied: the token is no admin's.
        assert!(matches!(denied("getaccounts"), ModuleError::Authentication(m) if m.contains("platform-admin")));
    }

    #[test]
    fn session_rejection_is_named_and_scrubbed() {
        let e = parse::<Checksum>(
            "getaccounts",
            &reply(200, r#"{"result":702,"error":"session [tok-123] is not valid"}"#),
            "tok-123",
        )
        .unwrap_err();
        let text = e.message();
        assert!(matches!(e, ModuleError::Authentication(_)));
        assert!(text.contains("rejected the session token"), "{text}");
        assert!(!text.contains("tok-123"), "{text}");
    }

    #[test]
    fn a_token_straddling_the_hint_cut_is_not_shown_in_part() {
        // 70 characters, then the token: the 80-character cut falls inside it.
        let body = format!("<html>{} session=SECRETTOKEN-1234567890&x=1</html>", "y".repeat(64));
        let e = parse::<Checksum>("getaccounts", &reply(502, &body), "SECRETTOKEN-1234567890").unwrap_err();
        let text = e.message();
        assert!(!text.contains("SECRETTOK") && !text.contains("SECRET"), "{text}");
        assert!(text.contains("session=["), "{text}");
    }

    #[test]
    fn a_rejection_echoing_the_start_of_the_token_shows_none_of_it() {
        // CloudPe quotes the first characters of the token it was sent.
        let token = "Cr0Zq8vLw2-secret-session-value";
        let body = r#"{"result":702,"error":"session [Cr0Z...] not valid"}"#;
        let e = parse::<Checksum>("getaccounts", &reply(200, body), token).unwrap_err();
        assert!(!e.message().contains("Cr0Z"), "{}", e.message());
        assert!(e.message().ends_with("session [[REDACTED]...] not valid"), "{}", e.message());
        // A longer start, the whole token, and a start too short to be told apart from words.
        assert_eq!(scrub("a Cr0Zq8vLw2-se b", token), "a [REDACTED] b");
        assert_eq!(scrub("a Cr0Z… b Cr0Zq c", token), "a [REDACTED]… b Cr0Zq c", "a short start only when cut");
        assert_eq!(scrub(&format!("[{token}]"), token), "[[REDACTED]]");
        assert_eq!(scrub("Cr0 stays", token), "Cr0 stays");
        // A token shorter than the minimum is redacted only whole.
        assert_eq!(scrub("ab abc", "abc"), "ab [REDACTED]");
        assert!(!reply_start(body.as_bytes(), token).contains("Cr0Z"));
    }

    #[test]
    fn secret_members_are_masked_before_the_call_log_cuts_the_reply() {
        // A long reply: its secret members come after the first 500 characters.
        let users: Vec<String> =
            (0..40).map(|i| format!(r#"{{"uid":{i},"email":"user{i}@example.com","login":"user{i}"}}"#)).collect();
        let body = format!(
            r#"{{"result":0,"array":[{}],"password":"hunter2-pass","user":{{"authToken":"tok-abc-987","Api_Key":12345,"hashes":["h1","h2"],"name":"ok"}},"cookie" : "c=1"}}"#,
            users.join(",")
        );
        assert!(body.len() > REPLY_START_CHARS * 2);
        let masked = mask_secret_members(&body);
        for secret in ["hunter2-pass", "tok-abc-987", "12345", "h1", "h2", "c=1"] {
            assert!(!masked.contains(secret), "{secret} shown in {masked}");
        }
        assert!(masked.contains(r#""password":"********""#), "{masked}");
        assert!(masked.contains(r#""Api_Key":"********""#), "{masked}");
        assert!(masked.contains(r#""name":"ok""#) && masked.contains("user39@example.com"), "{masked}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&masked).unwrap()["user"]["hashes"], "********");
        // The reply the call log keeps is the masked one's start: with the secrets moved to the
        // front, the first 500 characters still show none of them.
        let front = format!(r#"{{"password":"hunter2-pass","token":"tok-abc-987","array":[{}]}}"#, users.join(","));
        let start = reply_start(front.as_bytes(), "unrelated");
        assert!(start.starts_with(r#"{"password":"********","token":"********","array""#), "{start}");
        assert!(start.ends_with('…'), "{start}");
    }

    #[test]
    fn a_cut_or_malformed_reply_is_masked_too() {
        assert_eq!(mask_secret_members(r#"{"a":1,"session":"abcdef"#), r#"{"a":1,"session":"********""#);
        assert_eq!(mask_secret_members(r#"{"token": {"x": "y", "#), r#"{"token": "********""#);
        assert_eq!(mask_secret_members(r#"{"passwd":abc,"b":2}"#), r#"{"passwd":"********","b":2}"#);
        assert_eq!(mask_secret_members(r#"{"a\"token":1, "x\"y":"k"}"#), r#"{"a\"token":"********", "x\"y":"k"}"#);
        assert_eq!(mask_secret_members("<html>token</html>"), "<html>token</html>");
        assert_eq!(mask_secret_members(r#"["token", "key"]"#), r#"["token", "key"]"#);
        assert_eq!(mask_secret_members(r#"{"é":"ü","token":"ö"}"#), r#"{"é":"ü","token":"********"}"#);
        assert_eq!(mask_secret_members(r#"{"tok"#), r#"{"tok"#);
        assert_eq!(mask_secret_members("\"token\":"), "\"token\":\"********\"");
    }

    #[test]
    fn secret_names_follow_the_hostbill_sides_list() {
        for name in [
            "session",
            "password",
            "passwd",
            "Token",
            "client_secret",
            "apikey",
            "hash",
            "signature",
            "Authorization",
            "cookie",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["uid", "email", "login", "status", "group", "appid", "result"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn any_session_parameter_is_redacted() {
        assert_eq!(scrub("GET /x?appid=a&session=other-token&b=2", "tok"), "GET /x?appid=a&session=[REDACTED]&b=2");
        assert_eq!(scrub("Session=abc\"x session= y", ""), "Session=[REDACTED]\"x session= y");
        assert_eq!(scrub("session=tok", "tok"), "session=[REDACTED]");
        assert_eq!(scrub("no secrets", "tok"), "no secrets");
    }

    #[test]
    fn non_json_and_http_errors_are_transport_failures() {
        let e = parse::<Checksum>("getchecksum", &reply(502, "<html><body>Bad Gateway</body></html>"), "secret-token")
            .unwrap_err();
        assert!(
            matches!(&e, ModuleError::Transport(m) if m.contains("HTTP 502") && m.contains("Bad Gateway")),
            "{e:?}"
        );
        let e = parse::<Checksum>("getchecksum", &reply(200, "<html>maintenance</html>"), "secret-token").unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("not valid JSON (malformed)")), "{e:?}");
        let e = parse::<Checksum>("getchecksum", &reply(200, r#"{"result":0,"chec"#), "secret-token").unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("truncated")), "{e:?}");
        let e = parse::<Checksum>("getchecksum", &reply(200, ""), "secret-token").unwrap_err();
        assert!(matches!(&e, ModuleError::Transport(m) if m.contains("empty body")), "{e:?}");
        let e = parse::<Checksum>("getchecksum", &reply(404, "not found"), "secret-token").unwrap_err();
        assert!(matches!(e, ModuleError::Configuration(_)));
        let e = parse::<Checksum>("getchecksum", &reply(200, r#"{"checksum":"x"}"#), "secret-token").unwrap_err();
        assert!(e.message().contains("no `result`"));
        let e = parse::<Checksum>("getchecksum", &reply(200, r#"{"result":0}"#), "secret-token").unwrap_err();
        assert!(e.message().contains("unexpected shape"), "{}", e.message());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::api::AccountsPage;
    use crate::config::{BaseUrl, Scheme};

    const TOKEN: &str = "secret-token";

    fn response(status: u16, body: Vec<u8>) -> HttpResponse {
        HttpResponse { status, body }
    }

    fn page(status: u16, body: Vec<u8>) -> Result<AccountsPage, ModuleError> {
        parse::<AccountsPage>("getaccounts", &response(status, body), TOKEN)
    }

    /// The kind (and, for `remote-api`, the code) a non-zero `result` must give.
    fn expected_kind(code: i64) -> (&'static str, Option<i64>) {
        match code {
            RESULT_SESSION_INVALID | RESULT_PERMISSION_DENIED => ("authentication", None),
            RESULT_NOT_FOUND => ("not-found", None),
            RESULT_METHOD_NOT_FOUND => ("configuration", None),
            code => ("remote-api", Some(code)),
        }
    }

    fn kind(e: &ModuleError) -> (&'static str, Option<i64>) {
        match e {
            ModuleError::Configuration(_) => ("configuration", None),
            ModuleError::NotFound(_) => ("not-found", None),
            ModuleError::Authentication(_) => ("authentication", None),
            ModuleError::RemoteApi(RemoteError { code, .. }) => ("remote-api", Some(*code)),
            ModuleError::Transport(_) => ("transport", None),
            ModuleError::Unexpected(_) => ("unexpected", None),
        }
    }

    /// Strings that look like Host URLs (scheme, host, port, path, stray characters), and
    /// anything at all.
    fn host_urls() -> impl Strategy<Value = String> {
        prop_oneof!["[ ]{0,2}(https?|HTTPS|Http|ftp)://[a-z0-9.:@ /?#_-]{0,30}[ ]{0,2}", ".{0,80}",]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any status but 200: 404 is a configuration error (the Host URL points elsewhere),
        /// every other one a transport error; both name the status and the method, whatever the
        /// body.
        #[test]
        fn http_failures_name_the_status_and_the_method(status in (0u16..600).prop_filter("not 200", |s| *s != 200), body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let e = page(status, body).unwrap_err();
            let expected = if status == 404 { "configuration" } else { "transport" };
            prop_assert_eq!(kind(&e).0, expected, "{:?}", e);
            let text = e.message();
            prop_assert!(text.contains(&format!("HTTP {status} ")) && text.contains("getaccounts"), "{}", text);
        }

        /// The session token inside any reply (an HTML page, bytes, an envelope's error) never
        /// reaches the message, however the reply is cut.
        #[test]
        fn the_token_in_a_reply_never_reaches_the_message(status in prop::sample::select(vec![200u16, 500, 502]), before in proptest::collection::vec(any::<u8>(), 0..120), after in proptest::collection::vec(any::<u8>(), 0..120), code in prop::sample::select(vec![702i64, 99, 8202, 5])) {
            let mut raw = before.clone();
            raw.extend_from_slice(TOKEN.as_bytes());
            raw.extend_from_slice(&after);
            let envelope = serde_json::json!({"result": code, "error": String::from_utf8_lossy(&raw)}).to_string();
            for body in [raw, envelope.into_bytes()] {
                let e = page(status, body).unwrap_err();
                prop_assert!(!e.message().contains(TOKEN), "{}", e.message());
            }
        }

        /// Near-valid envelopes (random result codes, errors, shapes) get exactly their
        /// outcome: a success needs `result` 0 and no error, a code gets its kind (the mapping
        /// table of `api_error`) with CloudPe's error quoted, and a missing `result` is named.
        #[test]
        fn envelopes_with_random_fields(result in proptest::option::of(-5i64..10_000), error in proptest::option::of("[a-z \\[\\]]{0,20}"), total in proptest::option::of(any::<i64>()), uid in any::<i64>()) {
            let mut v = serde_json::json!({"array": [{"uid": uid, "status": 1}]});
            if let Some(r) = result { v["result"] = r.into(); }
            if let Some(e) = &error { v["error"] = e.clone().into(); }
            if let Some(t) = total { v["totalCount"] = t.into(); }
            let parsed = page(200, v.to_string().into_bytes());
            let error_text = error.as_deref().unwrap_or("").trim();
            match (result, error_text.is_empty()) {
                (Some(0), true) if uid >= 0 && total.is_none_or(|t| t >= 0) => {
                    let page = parsed.unwrap();
                    prop_assert_eq!(page.array[0].uid, uid as u64);
                    prop_assert_eq!(page.total_count, total.unwrap_or(0) as u64);
                }
                (Some(0), true) => {
                    let e = parsed.unwrap_err();
                    prop_assert!(matches!(&e, ModuleError::Transport(m) if m.contains("unexpected shape")), "{:?}", e);
                }
                (None, true) => prop_assert_eq!(
                    parsed.unwrap_err(),
                    ModuleError::Transport("CloudPe's reply to getaccounts has no `result` field".into())
                ),
                (code, _) => {
                    let e = parsed.unwrap_err();
                    prop_assert_eq!(kind(&e), expected_kind(code.unwrap_or(-1)), "{:?}", e);
                    if !error_text.is_empty() {
                        prop_assert!(e.message().contains(&format!(": {error_text}")), "{}", e.message());
                    }
                }
            }
        }

        /// A Host URL is rejected with a message that starts by quoting it, or accepted as a
        /// scheme, a bare authority and a path ending in the version segment.
        #[test]
        fn host_urls_are_quoted_when_rejected_and_normalised_when_accepted(raw in host_urls()) {
            match BaseUrl::parse(&raw) {
                Err(e) => prop_assert!(e.starts_with(&format!("Host URL {:?} ", raw.trim())), "{}", e),
                Ok(url) => {
                    let scheme = match url.scheme { Scheme::Https => "https://", Scheme::Http => "http://" };
                    prop_assert!(raw.trim().to_ascii_lowercase().starts_with(scheme), "{:?}", url);
                    prop_assert!(url.path.ends_with("/1.0") && !url.path.ends_with("//1.0"), "{:?}", url);
                    prop_assert!(
                        !url.authority.is_empty() && !url.authority.contains(['@', '/', '?', '#', ' ']),
                        "{:?}",
                        url
                    );
                    prop_assert_eq!(url.origin(), format!("{scheme}{}", url.authority));
                }
            }
        }
    }
}
