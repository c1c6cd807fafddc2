mod cli;
pub(crate) mod daemon;
mod e2e;
pub mod pipeline;
mod receivers;
mod slack;
