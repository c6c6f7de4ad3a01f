//! htpasswd files for `basic_auth`: `user:hash` lines, bcrypt entries only
//! (`htpasswd -B`); blank lines and `#` comments are skipped.

use std::collections::HashMap;

/// Read `path`: the users and their bcrypt hashes, or what is wrong (with
/// the file's name and the line).
pub fn read(path: &str) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    parse(&text).map_err(|e| format!("`{path}` {e}"))
}

/// Parse htpasswd text.
pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {}: not `user:hash`", n + 1));
        };
        if user.is_empty() {
            return Err(format!("line {}: empty user name", n + 1));
        }
        let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
        if !bcrypt || hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(format!(
                "line {}: user `{user}` has no bcrypt hash (make entries with `htpasswd -B`)",
                n + 1
            ));
        }
        if users.insert(user.to_string(), hash.to_string()).is_some() {
            return Err(format!("line {}: user `{user}` is listed twice", n + 1));
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn bcrypt_entries_only() {
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let ok = format!("# users\nalice:{hash}\n\n");
        assert_eq!(parse(&ok).expect("valid").len(), 1);
        assert!(parse(&format!("a:{hash}\na:{hash}"))
            .unwrap_err()
            .contains("twice"));
        assert!(parse("bob:$apr1$abc$def").unwrap_err().contains("line 1"));
        assert!(parse("bob:{SHA}x").unwrap_err().contains("bcrypt"));
        assert!(parse("nocolon").unwrap_err().contains("user:hash"));
    }
}
