//! The runtime shape of budgets, rate limits and guards, normalised from config. An agent's
//! own `guards` override the global ones key by key.

use std::collections::BTreeMap;
use std::time::Duration;

pub use super::raw::{DlpAction, GuardMode, InjectionAction};
use super::raw::{RawAgentLimits, RawBudget, RawGuards, RawLoops, RawRate, RawVelocity};
use crate::window::Period;

/// A USD cap over a period, in nano-dollars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub period: Period,
    pub limit_nanos: u64,
}

pub fn budgets(raw: Option<&RawBudget>) -> Vec<Budget> {
    let Some(raw) = raw else { return Vec::new() };
    [
        (Period::Day, raw.usd_per_day),
        (Period::Month, raw.usd_per_month),
        (Period::Run, raw.usd_per_run),
    ]
    .into_iter()
    .filter_map(|(period, usd)| {
        usd.map(|u| Budget {
            period,
            limit_nanos: u.0,
        })
    })
    .collect()
}

/// Requests and tokens per minute; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

/// An agent's rate limits: overall, and per glob of model name, MCP tool name or egress host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub overall: Rate,
    pub per_model: Vec<(String, Rate)>,
    pub per_tool: Vec<(String, Rate)>,
    pub per_host: Vec<(String, Rate)>,
}

pub fn rates(raw: Option<&RawAgentLimits>) -> Rates {
    let Some(raw) = raw else {
        return Rates::default();
    };
    Rates {
        overall: Rate {
            requests_per_minute: raw.requests_per_minute,
            tokens_per_minute: raw.tokens_per_minute,
        },
        per_model: per_glob(&raw.models),
        per_tool: per_glob(&raw.tools),
        per_host: per_glob(&raw.hosts),
    }
}

fn per_glob(raw: &BTreeMap<String, RawRate>) -> Vec<(String, Rate)> {
    raw.iter()
        .map(|(glob, r)| {
            (
                glob.clone(),
                Rate {
                    requests_per_minute: r.requests_per_minute,
                    tokens_per_minute: r.tokens_per_minute,
                },
            )
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopGuard {
    pub mode: GuardMode,
    pub identical_calls: Option<u32>,
    pub window: Duration,
    pub repeated_failures: Option<u32>,
    pub cycle_repeats: Option<u32>,
    pub calls_per_run: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Velocity {
    pub mode: GuardMode,
    pub nanos_per_minute: u64,
}

/// What the content guard does with each detector's findings, for one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DlpRules {
    pub default_action: DlpAction,
    /// By detector id: the agent's `actions`, then the global ones, then a custom
    /// detector's own `action`.
    pub actions: BTreeMap<String, DlpAction>,
    pub mode: GuardMode,
}

impl DlpRules {
    /// The action for a detector's finding; in monitor mode everything is only recorded.
    pub fn action(&self, detector: &str) -> DlpAction {
        if self.mode == GuardMode::Monitor {
            return DlpAction::Monitor;
        }
        self.actions
            .get(detector)
            .copied()
            .unwrap_or(self.default_action)
    }
}

/// The guards in force for one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guards {
    /// `None` when no loop rule is configured.
    pub loops: Option<LoopGuard>,
    pub velocity: Option<Velocity>,
    /// `None` when neither the agent nor the global `guards` has a `dlp` section: nothing
    /// the agent sends is scanned.
    pub dlp: Option<DlpRules>,
    /// Replies and tool results are always read for injected instructions; this says
    /// whether a hit only goes into the ledger or also stops the reply.
    pub injection: InjectionAction,
}

const DEFAULT_LOOP_WINDOW: Duration = Duration::from_secs(60);

/// The guards for an agent: its own settings first, then the global ones.
pub fn guards(global: Option<&RawGuards>, agent: Option<&RawGuards>) -> Guards {
    let mode = agent
        .and_then(|g| g.mode)
        .or(global.and_then(|g| g.mode))
        .unwrap_or(GuardMode::Enforce);
    let (al, gl): (Option<&RawLoops>, Option<&RawLoops>) = (
        agent.and_then(|g| g.loops.as_ref()),
        global.and_then(|g| g.loops.as_ref()),
    );
    let loops = (al.is_some() || gl.is_some()).then(|| {
        macro_rules! pick {
            ($f:ident) => {
                al.and_then(|l| l.$f).or(gl.and_then(|l| l.$f))
            };
        }
        LoopGuard {
            mode: pick!(mode).unwrap_or(mode),
            identical_calls: pick!(identical_calls),
            window: pick!(window).map_or(DEFAULT_LOOP_WINDOW, |s| s.0),
            repeated_failures: pick!(repeated_failures),
            cycle_repeats: pick!(cycle_repeats),
            calls_per_run: pick!(calls_per_run),
        }
    });
    let (av, gv): (Option<&RawVelocity>, Option<&RawVelocity>) = (
        agent.and_then(|g| g.velocity.as_ref()),
        global.and_then(|g| g.velocity.as_ref()),
    );
    let velocity = av
        .and_then(|v| v.usd_per_minute)
        .or(gv.and_then(|v| v.usd_per_minute))
        .map(|usd| Velocity {
            mode: av
                .and_then(|v| v.mode)
                .or(gv.and_then(|v| v.mode))
                .unwrap_or(mode),
            nanos_per_minute: usd.0,
        });
    let (ad, gd) = (
        agent.and_then(|g| g.dlp.as_ref()),
        global.and_then(|g| g.dlp.as_ref()),
    );
    let dlp = (ad.is_some() || gd.is_some()).then(|| {
        let mut actions: BTreeMap<String, DlpAction> = gd
            .iter()
            .flat_map(|d| &d.custom)
            .filter_map(|c| c.action.map(|a| (c.id.clone(), a)))
            .collect();
        for d in [gd, ad].into_iter().flatten() {
            actions.extend(d.actions.iter().map(|(id, a)| (id.clone(), *a)));
        }
        DlpRules {
            default_action: ad
                .and_then(|d| d.default_action)
                .or(gd.and_then(|d| d.default_action))
                .unwrap_or(DlpAction::Redact),
            actions,
            mode,
        }
    });
    let injection = match mode {
        GuardMode::Monitor => InjectionAction::Monitor,
        GuardMode::Enforce => agent
            .and_then(|g| g.injection.as_ref())
            .and_then(|i| i.action)
            .or(global
                .and_then(|g| g.injection.as_ref())
                .and_then(|i| i.action))
            .unwrap_or(InjectionAction::Monitor),
    };
    Guards {
        loops,
        velocity,
        dlp,
        injection,
    }
}
