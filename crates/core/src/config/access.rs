//! Which models an agent may use: its `allow.models` and `deny.models` globs, decided for
//! the name it asked for and for each target that name resolves to.
//!
//! A glob is matched, case-insensitively, against the name as asked, each target as
//! `provider/model`, and the target's model alone — so neither another spelling
//! (`mock/GPT-TEST`) nor the provider-qualified form (`mock/gpt-test`) slips past a deny,
//! and `allow: [gpt-4o*]` covers `openai/gpt-4o` too. A target is usable when the allow
//! list (if any) matches one of those names and no deny glob matches any of them.

use super::{Agent, Target};
use crate::glob;

impl Agent {
    /// Whether this agent may reach `target` when it asked for `requested`.
    pub fn may_use(&self, requested: &str, target: &Target) -> bool {
        let qualified = target.to_string();
        self.permits(&[requested, qualified.as_str(), target.model.as_str()])
    }

    /// Whether this agent could use `requested` at all, judged by the name alone (for a
    /// name that resolves to no target: refused as not allowed rather than unknown).
    pub fn may_name(&self, requested: &str) -> bool {
        self.permits(&[requested])
    }

    /// The allow list (if any) matches one of `names`, and no deny glob matches any.
    fn permits(&self, names: &[&str]) -> bool {
        let hit = |globs: &[String]| globs.iter().any(|g| names.iter().any(|n| matches(g, n)));
        self.allow.models.as_deref().is_none_or(hit) && !hit(&self.deny.models)
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    glob::matches(&pattern.to_lowercase(), &name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn agent(lists: &str) -> crate::config::Agent {
        let yaml = format!("agents:\n  - id: a\n{lists}");
        Config::parse(&yaml, &|_| None).unwrap().agents.remove(0)
    }

    fn target(t: &str) -> super::Target {
        super::Target::parse(t).unwrap()
    }

    #[test]
    fn a_denied_model_is_refused_in_every_spelling() {
        let a = agent("    deny: { models: [gpt-test] }\n");
        let t = target("mock/gpt-test");
        assert!(!a.may_use("gpt-test", &t));
        assert!(!a.may_use("mock/gpt-test", &t));
        assert!(!a.may_use("MOCK/GPT-TEST", &target("mock/GPT-TEST")));
        // An alias that resolves to the denied model is refused through its target.
        assert!(!a.may_use("cheap", &t));
        assert!(a.may_use("gpt-other", &target("mock/gpt-other")));
        assert!(!a.may_name("GPT-Test"));
    }

    #[test]
    fn a_deny_glob_can_name_a_provider() {
        let a = agent("    deny: { models: [\"expensive/*\"] }\n");
        assert!(!a.may_use("smart", &target("expensive/big")));
        assert!(a.may_use("smart", &target("cheap/big")));
    }

    #[test]
    fn an_allow_list_matches_the_name_or_its_target_and_deny_wins() {
        let a = agent(
            "    allow: { models: [\"*-e2e\", \"gpt-4o*\"] }\n    deny: { models: [secret-e2e] }\n",
        );
        assert!(a.may_use("chat-e2e", &target("mock/upstream")));
        assert!(a.may_use("openai/gpt-4o", &target("openai/gpt-4o")));
        assert!(!a.may_use("other", &target("mock/upstream")));
        assert!(!a.may_use("secret-e2e", &target("mock/upstream")));
        let none = agent("    allow: { models: [] }\n");
        assert!(!none.may_use("x", &target("mock/x")));
        assert!(!none.may_name("x"));
    }
}
