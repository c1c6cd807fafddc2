mod journeys;
mod kinds;
mod probes;
