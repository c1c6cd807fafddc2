mod fencing;
mod hardening;
mod locations;
mod outage_e2e;
mod run;
mod secrets;
mod status_page;
mod store;
