//! What an operator said about a backend through the admin API: its state
//! and a weight that overrides the config's. Both survive reloads.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};

/// What an operator said about a backend through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Normal.
    Active = 0,
    /// No new work; in flight finishes (a deploy).
    Draining = 1,
    /// No new work, for maintenance.
    Disabled = 2,
}

impl AdminState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => AdminState::Draining,
            2 => AdminState::Disabled,
            _ => AdminState::Active,
        }
    }

    /// The name on `/status`, in the state file and the API.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Active => "active",
            AdminState::Draining => "draining",
            AdminState::Disabled => "disabled",
        }
    }

    /// The state a name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AdminState::Active),
            "draining" => Some(AdminState::Draining),
            "disabled" => Some(AdminState::Disabled),
            _ => None,
        }
    }
}

/// The admin API's say on one backend.
#[derive(Default)]
pub struct Admin {
    state: AtomicU8,
    /// 0: no override.
    weight: AtomicU32,
}

impl Admin {
    /// The admin state in force.
    pub fn state(&self) -> AdminState {
        AdminState::from_u8(self.state.load(Relaxed))
    }

    /// Set the admin state.
    pub fn set_state(&self, s: AdminState) {
        self.state.store(s as u8, Relaxed);
    }

    /// The admin API's weight, if one is set.
    pub fn weight(&self) -> Option<u32> {
        Some(self.weight.load(Relaxed)).filter(|&w| w > 0)
    }

    /// Set (or with `None` drop) the admin API's weight.
    pub fn set_weight(&self, w: Option<u32>) {
        self.weight.store(w.unwrap_or(0), Relaxed);
    }
}
