//! The content guards' detectors: the built-in ones plus `guards.dlp.custom`, compiled once
//! per config, and every `actions` key checked against them so a typo is an error at load
//! rather than a detector that silently never blocks.

use std::sync::Arc;

use super::ConfigError;
use super::raw::{RawAgent, RawDlp, RawGuards};
use crate::guards::dlp::{CustomDetector, Detectors};

pub fn detectors(
    global: Option<&RawGuards>,
    agents: &[RawAgent],
    text: &str,
) -> Result<Arc<Detectors>, ConfigError> {
    let global_dlp = global.and_then(|g| g.dlp.as_ref());
    let custom: Vec<CustomDetector> = global_dlp
        .iter()
        .flat_map(|d| &d.custom)
        .map(|c| CustomDetector {
            id: c.id.clone(),
            pattern: c.pattern.clone(),
            validator: c.validator.clone(),
        })
        .collect();
    let detectors = Detectors::new(&custom).map_err(|e| {
        let at = custom
            .iter()
            .find(|c| e.contains(&c.id))
            .map_or("custom", |c| &c.id);
        ConfigError::about(text, at, format!("guards.dlp.custom: {e}"))
    })?;
    if let Some(dlp) = global_dlp {
        check_actions(&detectors, dlp, "guards.dlp", text)?;
    }
    for agent in agents {
        let Some(dlp) = agent.guards.as_ref().and_then(|g| g.dlp.as_ref()) else {
            continue;
        };
        let at = format!("agents.{}.guards.dlp", agent.id);
        if !dlp.custom.is_empty() {
            return Err(ConfigError::about(
                text,
                "custom",
                format!(
                    "{at}.custom: custom detectors are declared once, under guards.dlp.custom; an agent sets only their actions"
                ),
            ));
        }
        check_actions(&detectors, dlp, &at, text)?;
    }
    Ok(Arc::new(detectors))
}

fn check_actions(
    detectors: &Detectors,
    dlp: &RawDlp,
    at: &str,
    text: &str,
) -> Result<(), ConfigError> {
    for id in dlp.actions.keys() {
        if !detectors.ids().any(|known| known == id) {
            let known: Vec<&str> = detectors.ids().collect();
            return Err(ConfigError::about(
                text,
                id,
                format!(
                    "{at}.actions: no detector `{id}`; the detectors are {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
