//! `${VAR}` references in the config text, resolved before parsing so every secret stays
//! out of the file. `${VAR:-default}` supplies a fallback. References inside comments are
//! ignored, so a commented-out line never demands a variable.

use super::ConfigError;

pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = split_comment(line);
        let mut rest = code;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(ConfigError::at(
                    idx + 1,
                    "unterminated ${ in an environment reference",
                ));
            };
            let reference = &after[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (reference, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ConfigError::at(
                    idx + 1,
                    format!("`${{{reference}}}` is not a valid environment reference"),
                ));
            }
            match env(name)
                .filter(|v| !v.is_empty())
                .or(default.map(str::to_string))
            {
                Some(value) => out.push_str(&value),
                None => {
                    return Err(ConfigError::at(
                        idx + 1,
                        format!(
                            "environment variable {name} is not set (write ${{{name}:-default}} to make it optional)"
                        ),
                    ));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    Ok(out)
}

/// Splits a YAML line into code and a trailing `# comment` (a `#` at the line start or
/// after whitespace, outside quotes).
fn split_comment(line: &str) -> (&str, &str) {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return line.split_at(i),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "sk-123".to_string())
    }

    #[test]
    fn substitutes_and_reports_missing_with_line() {
        assert_eq!(interpolate("a: ${KEY}\n", &env).unwrap(), "a: sk-123\n");
        assert_eq!(interpolate("a: ${NOPE:-x}\n", &env).unwrap(), "a: x\n");
        let err = interpolate("a: 1\nb: ${NOPE}\n", &env).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("NOPE"));
    }

    #[test]
    fn comments_are_left_alone() {
        assert_eq!(interpolate("# ${NOPE}\n", &env).unwrap(), "# ${NOPE}\n");
        assert_eq!(
            interpolate("a: 1 # ${NOPE}\n", &env).unwrap(),
            "a: 1 # ${NOPE}\n"
        );
        assert_eq!(
            interpolate("a: \"x # ${KEY}\"\n", &env).unwrap(),
            "a: \"x # sk-123\"\n"
        );
    }
}
