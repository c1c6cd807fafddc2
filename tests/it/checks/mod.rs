mod journeys;
mod probes;
