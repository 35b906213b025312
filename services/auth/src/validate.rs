//! Input rules for accounts. Each check names the field it rejects.

use cityevents_runtime::{Error, Result};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Passwords longer than this are refused (argon2 input stays bounded).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Trims and lowercases an email and checks its shape.
pub fn email(field: &str, raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(field, "is not a valid email address"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(Error::invalid(field, "is not a valid email address (no @)"));
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(Error::invalid(field, "is not a valid email address"));
    }
    Ok(email)
}

/// Checks the password policy: 10 to 128 characters, not the email.
pub fn password(field: &str, password: &str, email: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.trim().is_empty() || password.eq_ignore_ascii_case(email) {
        return Err(Error::invalid(field, "is too easy to guess"));
    }
    Ok(())
}

/// Trims a display name; an empty one becomes the email's local part.
pub fn display_name(field: &str, raw: &str, email: &str) -> Result<String> {
    let name = raw.trim();
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or_default()
    } else {
        name
    };
    if name.chars().count() > 64 {
        return Err(Error::invalid(field, "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Parses a UUID argument.
pub fn uuid(field: &str, raw: &str) -> Result<uuid::Uuid> {
    if raw.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    raw.parse()
        .map_err(|_| Error::invalid(field, "is not a valid id"))
}

/// Checks an opaque token argument is present and of sane length.
pub fn token(field: &str, raw: &str) -> Result<()> {
    if raw.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if raw.len() > 256 {
        return Err(Error::invalid(field, "is not a token we issued"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            email("email", "  Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
    }

    #[test]
    fn malformed_emails_are_rejected_with_the_field_named() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "ada@@example.org",
            "ada@.org",
        ] {
            let err = email("email", bad).unwrap_err();
            assert!(err.message().starts_with("email:"), "{bad}: {err}");
        }
    }

    #[test]
    fn passwords_follow_the_policy() {
        assert!(password("password", "correct horse", "a@b.c").is_ok());
        assert!(password("password", "short", "a@b.c").is_err());
        assert!(password("password", &"x".repeat(129), "a@b.c").is_err());
        assert!(password("password", "          ", "a@b.c").is_err());
        assert!(password("password", "Ada@Example.org", "ada@example.org").is_err());
    }

    #[test]
    fn an_empty_display_name_falls_back_to_the_email() {
        assert_eq!(
            display_name("display_name", " ", "ada@example.org").unwrap(),
            "ada"
        );
        assert!(display_name("display_name", "a\u{0}b", "x@y.z").is_err());
    }
}
