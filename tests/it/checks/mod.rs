mod accuracy;
mod browser_trace;
mod dsl;
mod isolation;
mod journeys;
mod kinds;
mod probes;
mod retest_timing;
