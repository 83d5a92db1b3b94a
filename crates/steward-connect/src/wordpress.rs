//! A manifest for WordPress core's tables, ready to use (`steward datasets template
//! wordpress`): users and their profile meta, session tokens, comments (a member's by user
//! id, a guest's by e-mail address) and their meta, and the posts they wrote.
//!
//! Unlike WordPress's own eraser, which anonymises comments and keeps the account, its meta
//! and its session tokens, erasure here deletes the account, its meta and its sessions, and
//! anonymises comments and posts in the way `comments` says: `anonymise` keeps the text
//! without the author (WordPress's choice), `delete` removes them.

/// What a WordPress template is made for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The table prefix (`wp_`).
    pub prefix: String,
    /// The declared purpose the accounts serve.
    pub accounts: String,
    /// The declared purpose comments serve.
    pub comments: String,
    /// Erased comments: `anonymise` (the text stays, the author goes) or `delete`.
    pub erase_comments: String,
    /// The variable holding the connection URL.
    pub url_env: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: "wp_".to_owned(),
            accounts: "accounts".to_owned(),
            comments: "comments".to_owned(),
            erase_comments: "anonymise".to_owned(),
            url_env: "WORDPRESS_DATABASE_URL".to_owned(),
        }
    }
}

/// The manifest's text.
///
/// # Errors
/// A prefix that is not a plain identifier part, or an unknown comment erasure.
pub fn template(o: &Options) -> Result<String, String> {
    if !o
        .prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "--prefix `{}` is not a table prefix (letters, digits, _), e.g. wp_",
            o.prefix
        ));
    }
    let comment_erase = match o.erase_comments.as_str() {
        "anonymise" | "anonymize" => "fields",
        "delete" => "delete",
        other => {
            return Err(format!(
                "comments are erased by `anonymise` or `delete`, not `{other}`"
            ));
        }
    };
    let p = &o.prefix;
    let (accounts, comments, url_env) = (&o.accounts, &o.comments, &o.url_env);
    Ok(format!(
        r#"# WordPress core's tables (prefix {p}), as WordPress 6 creates them.
# Written by `steward datasets template wordpress`; check it with `steward datasets check`.

[dataset]
name = "wordpress"
url_env = "{url_env}"     # e.g. mysql://steward:PASSWORD@127.0.0.1:3306/wordpress
description = "The WordPress site's accounts, profiles, sessions, comments and posts"

# The account itself: deleted on erasure (WordPress's own eraser keeps it).
[[tables]]
name = "{p}users"
purpose = "{accounts}"
primary_key = ["ID"]
erase = "delete"
fields = [
  {{ name = "user_login", category = "user.account.username", identity = "username" }},
  {{ name = "user_email", category = "user.contact.email", identity = "email" }},
  {{ name = "user_nicename", category = "user.account.username" }},
  {{ name = "display_name", category = "user.name" }},
  {{ name = "user_url", category = "user.contact.social_url" }},
  {{ name = "user_pass", category = "user.authorization.password" }},
  {{ name = "user_activation_key", category = "user.authorization.password" }},
]
owns = [
  {{ column = "ID", table = "{p}usermeta_names", to = "user_id" }},
  {{ column = "ID", table = "{p}usermeta_profile", to = "user_id" }},
  {{ column = "ID", table = "{p}usermeta_sessions", to = "user_id" }},
  {{ column = "ID", table = "{p}usermeta_rest", to = "user_id" }},
  {{ column = "ID", table = "{p}comments", to = "user_id", same_person = true }},
  {{ column = "ID", table = "{p}posts", to = "post_author" }},
]

# Profile meta, one row per key.
[[tables]]
name = "{p}usermeta_names"
table = "{p}usermeta"
purpose = "{accounts}"
primary_key = ["umeta_id"]
erase = "delete"
only = {{ column = "meta_key", values = ["first_name", "last_name", "nickname"] }}
context = ["meta_key"]
fields = [{{ name = "meta_value", category = "user.name" }}]

[[tables]]
name = "{p}usermeta_profile"
table = "{p}usermeta"
purpose = "{accounts}"
primary_key = ["umeta_id"]
erase = "delete"
only = {{ column = "meta_key", values = ["description", "community-events-location"] }}
context = ["meta_key"]
fields = [{{ name = "meta_value", category = "user.demographic.profile" }}]

# Session tokens: each login's expiry, IP address and user agent (a PHP-serialised array):
# credentials, like the password's hash.
[[tables]]
name = "{p}usermeta_sessions"
table = "{p}usermeta"
purpose = "{accounts}"
primary_key = ["umeta_id"]
erase = "delete"
only = {{ column = "meta_key", values = ["session_tokens"] }}
context = ["meta_key"]
fields = [{{ name = "meta_value", category = "user.authorization.password" }}]

# The rest of an account's meta (settings, capabilities, plugin data): deleted with it, as
# WordPress's own wp_delete_user() does.
[[tables]]
name = "{p}usermeta_rest"
table = "{p}usermeta"
purpose = "{accounts}"
primary_key = ["umeta_id"]
erase = "delete"
only = {{ column = "meta_key", values = ["first_name", "last_name", "nickname", "description", "community-events-location", "session_tokens"], except = true }}
context = ["meta_key"]
fields = [{{ name = "meta_value", category = "user.settings" }}]

# Comments: a member's by user id (owned above), a guest's by the e-mail address they gave.
# Erasure: "fields" anonymises them as WordPress does (the text stays), "delete" removes them.
[[tables]]
name = "{p}comments"
purpose = "{comments}"
primary_key = ["comment_ID"]
erase = "{comment_erase}"
fields = [
  {{ name = "comment_author_email", category = "user.contact.email", identity = "email", erase = "replace:" }},
  {{ name = "comment_author", category = "user.name", erase = "replace:Anonymous" }},
  {{ name = "comment_author_url", category = "user.contact.social_url", erase = "replace:" }},
  {{ name = "comment_author_IP", category = "user.device.ip_address", erase = "replace:" }},
  {{ name = "comment_agent", category = "user.device.telemetry", erase = "replace:" }},
  {{ name = "user_id", category = "user.unique_id", erase = "replace:0" }},
  {{ name = "comment_content", category = "user.content.public", erase = "unlinked" }},
]
owns = [{{ column = "comment_ID", table = "{p}commentmeta", to = "comment_id" }}]

[[tables]]
name = "{p}commentmeta"
purpose = "{comments}"
primary_key = ["meta_id"]
erase = "delete"
context = ["meta_key"]
fields = [{{ name = "meta_value", category = "user.content.public" }}]

# Posts a user wrote: the author is removed (the post stays with no author).
[[tables]]
name = "{p}posts"
purpose = "{accounts}"
primary_key = ["ID"]
context = ["post_title", "post_type", "post_status"]
fields = [{{ name = "post_author", category = "user.unique_id", erase = "replace:0" }}]
"#
    ))
}
