mod accuracy;
mod dsl;
mod isolation;
mod journeys;
mod kinds;
mod probes;
mod retest_timing;
