//! The process environment. The only module in the workspace allowed to
//! read environment variables; everything else calls these (or takes the
//! value as configuration, e.g. through clap's `env = ...`).
//!
//! Each function mirrors its `std::env` namesake, with `Option` in place of
//! `Result` where the distinction between "unset" and "not Unicode" does
//! not matter to any caller.

use std::ffi::OsString;

/// The variable's value, if it is set and valid Unicode.
#[allow(
    clippy::disallowed_methods,
    reason = "the workspace's one reader of an environment variable"
)]
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The variable's value, if set (any bytes).
#[allow(
    clippy::disallowed_methods,
    reason = "the workspace's one reader of an environment variable (any bytes)"
)]
pub fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Whether the variable is set (to anything, even the empty string).
pub fn is_set(name: &str) -> bool {
    var_os(name).is_some()
}

/// Every variable that is set and valid Unicode, name and value.
#[allow(
    clippy::disallowed_methods,
    reason = "the workspace's one reader of the whole environment"
)]
pub fn vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The variable parsed as `T`, if set and parseable.
pub fn parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    var(name).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_process_inherited() {
        // PATH is set for every test process cargo starts; a name nobody
        // sets reads as unset.
        assert!(var("PATH").is_some_and(|p| !p.is_empty()));
        assert!(var_os("PATH").is_some());
        assert!(is_set("PATH"));
        assert!(vars().iter().any(|(k, _)| k == "PATH"));
        let unset = "PROOFMESH_AMBIENT_TEST_SURELY_UNSET_4f1c";
        assert_eq!(var(unset), None);
        assert!(!is_set(unset));
        assert_eq!(parse::<u32>(unset), None);
    }

    #[test]
    fn the_readers_agree() {
        for (name, value) in vars() {
            assert_eq!(var(&name).as_deref(), Some(value.as_str()), "{name}");
            assert_eq!(var_os(&name), Some(value.clone().into()), "{name}");
        }
    }
}
