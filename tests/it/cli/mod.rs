mod check;
mod dashboards;
mod demo;
mod gate;
