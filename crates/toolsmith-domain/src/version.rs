//! Semantic versions of tools (SPEC §6): the first version is `1.0.0`; a new generation of an
//! existing name bumps the minor part, a heal the patch part, an incompatible signature the
//! major part.

pub const FIRST_VERSION: &str = "1.0.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

/// The version after `current`; `None` when `current` is not `MAJOR.MINOR.PATCH`.
pub fn bump(current: &str, bump: Bump) -> Option<String> {
    let mut parts = current.split('.').map(|p| p.parse::<u64>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    Some(match bump {
        Bump::Major => format!("{}.0.0", major + 1),
        Bump::Minor => format!("{major}.{}.0", minor + 1),
        Bump::Patch => format!("{major}.{minor}.{}", patch + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps() {
        assert_eq!(bump("1.0.0", Bump::Minor).as_deref(), Some("1.1.0"));
        assert_eq!(bump("1.4.2", Bump::Minor).as_deref(), Some("1.5.0"));
        assert_eq!(bump("1.4.2", Bump::Patch).as_deref(), Some("1.4.3"));
        assert_eq!(bump("1.4.2", Bump::Major).as_deref(), Some("2.0.0"));
        assert_eq!(bump("1.4", Bump::Minor), None);
        assert_eq!(bump("1.4.2.1", Bump::Minor), None);
        assert_eq!(bump("a.b.c", Bump::Minor), None);
    }
}
