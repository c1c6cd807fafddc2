mod accuracy;
mod browser_trace;
mod isolation;
mod journeys;
mod kinds;
mod probes;
mod retest_timing;
