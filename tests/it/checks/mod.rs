mod accuracy;
mod isolation;
mod journeys;
mod kinds;
mod probes;
mod retest_timing;
