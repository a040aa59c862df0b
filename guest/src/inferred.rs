//! The CloudPe facts of **medium** confidence the lifecycle operations rely on (groups, user
//! creation, user info), each named once, here. They come from one unofficial place each (a
//! client wrapper's declaration, or one or two callers), not from CloudPe's documentation:
//! docs/cloudpe-api.md, "Linking, groups and provisioning", lists each with its source. If a real
//! platform differs, this file changes, the simulator's variant switch (`cloudpe-sim
//! --create-variant`, `--groups-shape`) shows the other answer, and the capability probe
//! (`ops::lifecycle::capabilities`) tells the admin which methods the token may really call.

/// `billing/groupquota/rest/getgroups`: the platform's groups (no parameters). Reply shape not
/// seen: `array` of objects with `name` expected; bare names are accepted too.
pub const GET_GROUPS: (&str, &str) = ("billing/groupquota", "getgroups");

/// `billing/account/rest/setgroup`: moves one user to a group (`uid`, `groupName`,
/// `resetBalance`, `resetBonus`). Seen only in a client wrapper's declaration.
pub const SET_GROUP: (&str, &str) = ("billing/account", "setgroup");
/// The parameters `setgroup` takes besides `uid`, as the wrapper names them.
pub const SET_GROUP_NAME_PARAM: &str = "groupName";
/// Sent as `false`: a package change must not wipe the user's balance or bonus.
pub const SET_GROUP_KEEP_PARAMS: [(&str, &str); 2] = [("resetBalance", "false"), ("resetBonus", "false")];

/// The two creation calls seen, tried in this order; a `404` (unknown on this platform) moves to
/// the next. Neither takes a group, and no reply seen carries the new uid: it is read back by
/// email.
pub const CREATE_VARIANTS: [CreateVariant; 2] = [
    CreateVariant {
        path: ("system/admin", "createaccount"),
        extra: &[("autoActive", "true"), ("sendCredentials", "true")],
    },
    CreateVariant { path: ("users/account", "addaccount"), extra: &[("notify", "true")] },
];

/// One way of creating a CloudPe user: its path and the parameters it takes besides `email`,
/// `password` and `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateVariant {
    pub path: (&'static str, &'static str),
    /// `autoActive=true` activates at once (without it CloudPe mails an activation key and
    /// deletes a user not activated within 24 hours); `sendCredentials`/`notify` have CloudPe
    /// mail the credentials, since the module never keeps the password.
    pub extra: &'static [(&'static str, &'static str)],
}

/// `system/admin/rest/getuserinfo` (`login` = email): another way to a user's uid (one real
/// client reads it after a create). Probed only; the module finds users with `getaccounts`.
pub const GET_USER_INFO: (&str, &str) = ("system/admin", "getuserinfo");

/// The words of CloudPe's error text for an email already taken (`createaccount` /
/// `addaccount`): such an answer is never final; the module looks the email up again.
pub const DUPLICATE_EMAIL_WORDS: [&str; 3] = ["already exists", "already registered", "already in use"];

/// The permissions an admin adds to a token's API list for the methods above, in CloudPe's dotted
/// form (as its 8202 "required permissions" text prints them), derived from the paths: the 8202
/// messages name them (`envelope::OPTIONAL_METHODS`). Not seen in any reply.
pub const PERMISSIONS: [(&str, &str); 5] = [
    (GET_GROUPS.1, "billing.GroupQuota.GetGroups"),
    (SET_GROUP.1, "billing.Account.SetGroup"),
    (CREATE_VARIANTS[0].path.1, "system.Admin.CreateAccount"),
    (CREATE_VARIANTS[1].path.1, "users.Account.AddAccount"),
    (GET_USER_INFO.1, "system.Admin.GetUserInfo"),
];
