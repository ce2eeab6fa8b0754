//! Glob patterns for allow lists (`gpt-4o*`, `github__search_*`): `*` matches any run of
//! characters, `?` exactly one. Nothing else is special.

pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`: linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An allow list: `None` allows everything, `Some([])` allows nothing.
pub fn allowed(list: Option<&[String]>, name: &str) -> bool {
    list.is_none_or(|globs| globs.iter().any(|g| matches(g, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("gpt-4o*", "gpt-4o-mini"));
        assert!(matches("*", ""));
        assert!(matches("github__search_*", "github__search_code"));
        assert!(!matches("github__search_*", "github__delete"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*.slack.com", "x.slack.com"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("exact", "exactly"));
    }

    #[test]
    fn omitted_allows_all_and_empty_allows_none() {
        assert!(allowed(None, "x"));
        assert!(!allowed(Some(&[]), "x"));
        assert!(allowed(Some(&["x".into()]), "x"));
    }
}
